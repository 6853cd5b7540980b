package bfd

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the Manager's collectors; label values are resolved once per
// session so the packet path only increments counters.
type metrics struct {
	up       *prometheus.GaugeVec
	upTrans  *prometheus.CounterVec
	downTran *prometheus.CounterVec
	rx       *prometheus.CounterVec
	tx       *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	peer := []string{"local", "peer"}
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "session_up",
			Help: "1 when the BFD session to the peer is Up, else 0.",
		}, peer),
		upTrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "session_up_transitions_total",
			Help: "Transitions of the BFD session into Up.",
		}, peer),
		downTran: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "session_down_transitions_total",
			Help: "Transitions of the BFD session out of Up.",
		}, peer),
		rx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "control_packets_received_total",
			Help: "BFD control packets accepted for the session.",
		}, peer),
		tx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "control_packets_sent_total",
			Help: "BFD control packets sent by the session.",
		}, peer),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "bfd", Name: "control_packets_dropped_total",
			Help: "Received BFD control packets discarded, by local address and reason.",
		}, []string{"local", "reason"}),
	}
	if reg != nil {
		m.up = register(reg, m.up)
		m.upTrans = register(reg, m.upTrans)
		m.downTran = register(reg, m.downTran)
		m.rx = register(reg, m.rx)
		m.tx = register(reg, m.tx)
		m.dropped = register(reg, m.dropped)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name, so several Managers can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// sessionMetrics are one session's resolved children.
type sessionMetrics struct {
	up             prometheus.Gauge
	upTrans, downs prometheus.Counter
	rx, tx         prometheus.Counter
}

func (m *metrics) forSession(k PeerKey) sessionMetrics {
	l, p := k.Local.String(), k.Peer.String()
	return sessionMetrics{
		up:      m.up.WithLabelValues(l, p),
		upTrans: m.upTrans.WithLabelValues(l, p),
		downs:   m.downTran.WithLabelValues(l, p),
		rx:      m.rx.WithLabelValues(l, p),
		tx:      m.tx.WithLabelValues(l, p),
	}
}

func (m *metrics) forget(k PeerKey) {
	l, p := k.Local.String(), k.Peer.String()
	m.up.DeleteLabelValues(l, p)
	m.upTrans.DeleteLabelValues(l, p)
	m.downTran.DeleteLabelValues(l, p)
	m.rx.DeleteLabelValues(l, p)
	m.tx.DeleteLabelValues(l, p)
}
