package router

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/fabric/rib"
)

// metrics are the router's own series; the BFD manager adds its own to the same
// registry. Served on the control socket at /metrics.
type metrics struct {
	prefixes    prometheus.Gauge
	changes     *prometheus.CounterVec
	fibErrors   prometheus.Counter
	bfdResets   prometheus.Counter
	peerChanges *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, router string) *metrics {
	labels := prometheus.Labels{"router": router}
	m := &metrics{
		prefixes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fabric_router_prefixes", Help: "Prefixes with a non-empty ECMP set.", ConstLabels: labels}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_router_ecmp_changes_total", Help: "ECMP set changes by kind (add, update, withdraw).", ConstLabels: labels},
			[]string{"kind"}),
		fibErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_router_fib_errors_total", Help: "Failed kernel FIB updates.", ConstLabels: labels}),
		bfdResets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_router_bfd_resets_total", Help: "BGP sessions reset because BFD went down.", ConstLabels: labels}),
		peerChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_router_bgp_state_changes_total", Help: "BGP neighbor state changes by new state.", ConstLabels: labels},
			[]string{"state"}),
	}
	reg.MustRegister(m.prefixes, m.changes, m.fibErrors, m.bfdResets, m.peerChanges)
	return m
}

func (m *metrics) observe(r *rib.RIB, changes []rib.Change) {
	for _, c := range changes {
		m.changes.WithLabelValues(string(c.Kind)).Inc()
	}
	m.prefixes.Set(float64(r.Len()))
}
