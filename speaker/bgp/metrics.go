package bgp

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	up       *prometheus.GaugeVec
	prefixes *prometheus.GaugeVec
	failures *prometheus.CounterVec
	dirty    *prometheus.GaugeVec
	// wanted counts, per peer, the prefixes the table holds for it (the
	// value of prefixes; read by the MetalLB collector). Guarded by Speaker.mu.
	wanted map[string]int
}

// updatesCollector reads the per-session counters at scrape time.
type updatesCollector struct {
	s              *Speaker
	desc, received *prometheus.Desc
}

func (c updatesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.received }

func (c updatesCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, sess := range c.s.sessions {
		sent, received := sess.counters()
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(sent), sess.spec.Name)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.CounterValue, float64(received), sess.spec.Name)
	}
}

func newMetrics(s *Speaker, reg prometheus.Registerer) *metrics {
	m := &metrics{
		wanted: map[string]int{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ecmplb", Subsystem: "speaker", Name: "bgp_session_up",
			Help: "1 when the BGP session to the peer is established.",
		}, []string{"peer"}),
		prefixes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ecmplb", Subsystem: "speaker", Name: "announced_prefixes",
			Help: "Prefixes announced towards the peer.",
		}, []string{"peer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "ecmplb", Subsystem: "speaker", Name: "bgp_reconcile_failures_total",
			Help: "Attempts to converge the BGP session (instance, neighbor, paths) that failed and will be retried.",
		}, []string{"peer"}),
		dirty: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "ecmplb", Subsystem: "speaker", Name: "bgp_pending_prefixes",
			Help: "Prefixes whose last announce or withdraw towards the peer failed and is being retried.",
		}, []string{"peer"}),
	}
	if reg != nil {
		reg.MustRegister(m.up, m.prefixes, m.failures, m.dirty, updatesCollector{s: s, desc: prometheus.NewDesc(
			"ecmplb_speaker_bgp_updates_sent_total", "BGP UPDATE messages sent to the peer by the current session.",
			[]string{"peer"}, nil),
			received: prometheus.NewDesc("ecmplb_speaker_bgp_discarded_prefixes_total",
				"Prefixes the peer announced. The speaker drops each UPDATE on arrival and keeps nothing; a peer sending nodes routes only costs bandwidth and CPU.",
				[]string{"peer"}, nil)})
		reg.MustRegister(metallbCollector{s})
	}
	return m
}

func (m *metrics) sessionUp(peer string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(peer).Set(v)
}

func (m *metrics) failure(peer string) { m.failures.WithLabelValues(peer).Inc() }

func (m *metrics) pending(peer string, n int) { m.dirty.WithLabelValues(peer).Set(float64(n)) }

// forget drops a removed peer's series.
func (m *metrics) forget(peer string) {
	m.up.DeleteLabelValues(peer)
	m.dirty.DeleteLabelValues(peer)
	m.failures.DeleteLabelValues(peer)
}

func (m *metrics) prefixDelta(c change) {
	switch {
	case c.attrs == nil:
		m.prefixes.WithLabelValues(c.peer).Dec()
		m.wanted[c.peer]--
	case c.isNew:
		m.prefixes.WithLabelValues(c.peer).Inc()
		m.wanted[c.peer]++
	}
}

func (m *metrics) refreshPrefixes(t *table) {
	m.prefixes.Reset()
	clear(m.wanted)
	for peer, n := range t.counts() {
		m.prefixes.WithLabelValues(peer).Set(float64(n))
		m.wanted[peer] = n
	}
}
