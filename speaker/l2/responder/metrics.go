package responder

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are MetalLB's layer 2 counters (its speaker/layer2 stats.go names
// and labels), so its dashboards and alerts read ours; and one of the
// project's own for the retry loop.
type metrics struct {
	requests, responses, gratuitous *prometheus.CounterVec
	failures                        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "metallb", Subsystem: "layer2",
			Name: "requests_received", Help: "Number of layer2 requests received for owned IPs"}, []string{"ip"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "metallb", Subsystem: "layer2",
			Name: "responses_sent", Help: "Number of layer2 responses sent"}, []string{"ip"}),
		gratuitous: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "metallb", Subsystem: "layer2",
			Name: "gratuitous_sent", Help: "Number of gratuitous layer2 packets sent (gratuitous ARP requests and replies, unsolicited Neighbor Advertisements)"}, []string{"ip"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "l2_responder_failures_total", Help: "Attempts to open or keep the ARP/NDP listeners of an interface that failed and will be retried."},
			[]string{"interface"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.responses, m.gratuitous, m.failures)
	}
	return m
}

func (m *metrics) request(ip netip.Addr)  { m.requests.WithLabelValues(ip.String()).Inc() }
func (m *metrics) response(ip netip.Addr) { m.responses.WithLabelValues(ip.String()).Inc() }
func (m *metrics) sentGratuitous(ip netip.Addr) {
	m.gratuitous.WithLabelValues(ip.String()).Inc()
}
func (m *metrics) failure(ifName string) { m.failures.WithLabelValues(ifName).Inc() }

// forgetIP drops an IP's series once no interface answers for it, so a
// speaker that saw many IPs come and go keeps no series for them.
func (m *metrics) forgetIP(ip netip.Addr) {
	s := ip.String()
	m.requests.DeleteLabelValues(s)
	m.responses.DeleteLabelValues(s)
	m.gratuitous.DeleteLabelValues(s)
}

func (m *metrics) forgetInterface(ifName string) { m.failures.DeleteLabelValues(ifName) }
