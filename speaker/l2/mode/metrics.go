package mode

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	answering, alone, alive, services, served prometheus.Gauge
	fenced, computed                          prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker", Name: "l2_" + name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker", Name: "l2_" + name, Help: help})
	}
	m := &metrics{
		answering: g("may_answer", "1 while this speaker may answer ARP/NDP at all (its heartbeats are heard, or it hears no other node), else 0."),
		alone:     g("alone", "1 while this speaker answers because it hears no other node's heartbeat."),
		alive:     g("alive_nodes", "Nodes this speaker hands Service IPs to (itself included while it may answer)."),
		services:  g("services", "Services announced in layer 2 mode, as this speaker sees them."),
		served:    g("services_answered", "Services whose IPs this speaker answers for."),
		fenced:    c("fenced_total", "Times this speaker stopped answering everything: its heartbeats went unconfirmed, or it stopped."),
		computed:  c("assignments_total", "Assignments of every layer 2 Service to its answering node computed."),
	}
	if reg == nil {
		return m, nil
	}
	for _, x := range []prometheus.Collector{m.answering, m.alone, m.alive, m.services, m.served, m.fenced, m.computed} {
		if err := reg.Register(x); err != nil {
			return nil, fmt.Errorf("l2 mode: register metrics: %w", err)
		}
	}
	return m, nil
}
