package heartbeat

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the heartbeat's counters. None is labelled by node: without a
// key, the names come from anyone who can send a datagram. Which nodes are
// heard is the liveness Table's business.
type metrics struct {
	sent, received prometheus.Counter
	dropped        *prometheus.CounterVec
	sendErrors     prometheus.Counter
	socketErrors   prometheus.Counter
	peers          prometheus.Gauge
	rtt            prometheus.Histogram
}

// newMetrics registers on reg (nil: nowhere). A second heartbeat on one
// registry is an error, not a panic.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker", Name: "l2_heartbeat_" + name, Help: help}
	}
	m := &metrics{
		sent:     prometheus.NewCounter(opts("datagrams_sent_total", "Heartbeat datagrams sent to peers.")),
		received: prometheus.NewCounter(opts("datagrams_received_total", "Valid heartbeat datagrams received from other nodes.")),
		dropped: prometheus.NewCounterVec(opts("datagrams_dropped_total",
			"Received heartbeat datagrams discarded, by reason: short, oversized, magic, version, malformed, auth, own_name, stale."),
			[]string{"reason"}),
		sendErrors:   prometheus.NewCounter(opts("send_errors_total", "Heartbeat datagrams the kernel refused to send (no route, link down, buffer full).")),
		socketErrors: prometheus.NewCounter(opts("socket_errors_total", "Failures to open or read the heartbeat socket; each is retried with backoff.")),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker", Name: "l2_heartbeat_peers",
			Help: "Addresses the heartbeat sends to."}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ecmplb", Subsystem: "speaker", Name: "l2_heartbeat_rtt_seconds",
			Help:    "Round trip times to peers, from the echoes in their heartbeats (their hold time taken out).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14)}), // 50 µs to 0.4 s
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r) // every reason exported from the start, at 0
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sent, m.received, m.dropped, m.sendErrors, m.socketErrors, m.peers, m.rtt} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("heartbeat: register metrics: %w", err)
		}
	}
	return m, nil
}
