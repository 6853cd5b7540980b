package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
)

// MetalLB's BFD metrics (frr-tools/metrics/collector/bfd.go in its FRR mode:
// labels peer, the peer's address, and vrf), read from ecmplb's own BFD
// sessions. MetalLB's metallb_bfd_zebra_notifications counts bfdd's messages
// to FRR's zebra daemon; ecmplb has no zebra, so it has no such series.
var (
	bfdLabels          = []string{"peer", "vrf"}
	mlbBFDSessionUp    = prometheus.NewDesc("metallb_bfd_session_up", "BFD session state (1 is up, 0 is down).", bfdLabels, nil)
	mlbBFDControlIn    = prometheus.NewDesc("metallb_bfd_control_packet_input", "Number of received BFD control packets.", bfdLabels, nil)
	mlbBFDControlOut   = prometheus.NewDesc("metallb_bfd_control_packet_output", "Number of sent BFD control packets.", bfdLabels, nil)
	mlbBFDEchoIn       = prometheus.NewDesc("metallb_bfd_echo_packet_input", "Number of received BFD echo packets.", bfdLabels, nil)
	mlbBFDEchoOut      = prometheus.NewDesc("metallb_bfd_echo_packet_output", "Number of sent BFD echo packets.", bfdLabels, nil)
	mlbBFDUpEvents     = prometheus.NewDesc("metallb_bfd_session_up_events", "Number of BFD session up events.", bfdLabels, nil)
	mlbBFDDownEvents   = prometheus.NewDesc("metallb_bfd_session_down_events", "Number of BFD session down events.", bfdLabels, nil)
	mlbBFDDescriptions = []*prometheus.Desc{mlbBFDSessionUp, mlbBFDControlIn, mlbBFDControlOut, mlbBFDEchoIn,
		mlbBFDEchoOut, mlbBFDUpEvents, mlbBFDDownEvents}
)

// bfdSessions is the BFD Manager as the collector reads it.
type bfdSessions interface {
	Sessions() []bfd.SessionInfo
}

// bfdCollector reads every BFD session's counters at scrape time.
type bfdCollector struct{ src bfdSessions }

func (c bfdCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range mlbBFDDescriptions {
		ch <- d
	}
}

func (c bfdCollector) Collect(ch chan<- prometheus.Metric) {
	type counts struct {
		up                                   bool
		in, out, echoIn, echoOut, ups, downs uint64
	}
	// ecmplb runs no VRF (a BGPPeer's vrf is rejected), and MetalLB keys by
	// peer address: sessions to one peer from two local addresses add up.
	byPeer := map[string]*counts{}
	var order []string
	for _, s := range c.src.Sessions() {
		p := s.Key.Peer.String()
		c := byPeer[p]
		if c == nil {
			c = &counts{}
			byPeer[p] = c
			order = append(order, p)
		}
		c.up = c.up || s.State == bfd.StateUp
		c.in += s.PacketsIn
		c.out += s.PacketsOut
		c.echoIn += s.EchoPacketsIn
		c.echoOut += s.EchoPacketsOut
		c.ups += s.UpEvents
		c.downs += s.DownEvents
	}
	for _, p := range order {
		c := byPeer[p]
		up := 0.0
		if c.up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(mlbBFDSessionUp, prometheus.GaugeValue, up, p, "default")
		for d, v := range map[*prometheus.Desc]uint64{mlbBFDControlIn: c.in, mlbBFDControlOut: c.out,
			mlbBFDEchoIn: c.echoIn, mlbBFDEchoOut: c.echoOut, mlbBFDUpEvents: c.ups, mlbBFDDownEvents: c.downs} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), p, "default")
		}
	}
}
