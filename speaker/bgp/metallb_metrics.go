package bgp

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/prometheus/client_golang/prometheus"
)

// MetalLB's BGP metrics, under its names and labels, so its dashboards and
// alerts work unchanged. session_up, updates_total, announced_prefixes_total
// and pending_prefixes_total are what its native speaker exposes
// (internal/bgp/native/stats.go, label peer); the message counters are what
// its FRR mode exposes (frr-tools/metrics/collector/bgp.go, labels peer and
// vrf), which also carries the first three with vrf. peer is "address:port"
// in both.
var (
	mlbPeerVRF = []string{"peer", "vrf"}

	mlbSessionUp = prometheus.NewDesc("metallb_bgp_session_up",
		"BGP session state (1 is up, 0 is down).", mlbPeerVRF, nil)
	mlbAnnounced = prometheus.NewDesc("metallb_bgp_announced_prefixes_total",
		"Number of prefixes currently being advertised on the BGP session.", mlbPeerVRF, nil)
	mlbPending = prometheus.NewDesc("metallb_bgp_pending_prefixes_total",
		"Number of prefixes that should be advertised on the BGP session.", []string{"peer"}, nil)
	mlbUpdatesSent = prometheus.NewDesc("metallb_bgp_updates_total",
		"Number of BGP UPDATE messages sent.", mlbPeerVRF, nil)
	mlbUpdatesReceived = prometheus.NewDesc("metallb_bgp_updates_total_received",
		"Number of BGP UPDATE messages received (and dropped on arrival: the speaker keeps no received route).", mlbPeerVRF, nil)
	mlbOpensSent = prometheus.NewDesc("metallb_bgp_opens_sent",
		"Number of BGP OPEN messages sent.", mlbPeerVRF, nil)
	mlbOpensReceived = prometheus.NewDesc("metallb_bgp_opens_received",
		"Number of BGP OPEN messages received.", mlbPeerVRF, nil)
	mlbNotificationsSent = prometheus.NewDesc("metallb_bgp_notifications_sent",
		"Number of BGP NOTIFICATION messages sent.", mlbPeerVRF, nil)
	mlbKeepalivesSent = prometheus.NewDesc("metallb_bgp_keepalives_sent",
		"Number of BGP KEEPALIVE messages sent.", mlbPeerVRF, nil)
	mlbKeepalivesReceived = prometheus.NewDesc("metallb_bgp_keepalives_received",
		"Number of BGP KEEPALIVE messages received.", mlbPeerVRF, nil)
	mlbRefreshSent = prometheus.NewDesc("metallb_bgp_route_refresh_sent",
		"Number of BGP ROUTE-REFRESH messages sent.", mlbPeerVRF, nil)
	mlbTotalSent = prometheus.NewDesc("metallb_bgp_total_sent",
		"Number of BGP messages sent.", mlbPeerVRF, nil)
	mlbTotalReceived = prometheus.NewDesc("metallb_bgp_total_received",
		"Number of BGP messages received.", mlbPeerVRF, nil)
)

// peerCounts is one (peer, vrf)'s values in one scrape.
type peerCounts struct {
	up                 bool
	announced, pending int
	opensOut, opensIn  uint64
	updatesOut         uint64
	updatesIn          uint64
	keepalivesOut      uint64
	keepalivesIn       uint64
	notificationsOut   uint64
	refreshOut         uint64
	totalOut, totalIn  uint64
}

// metallbCollector reads each session's state at scrape time: GoBGP's
// message counters (for the current neighbor), the relay's count of the
// UPDATEs it dropped, and the route table.
type metallbCollector struct{ s *Speaker }

func (c metallbCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mlbSessionUp, mlbAnnounced, mlbPending, mlbUpdatesSent, mlbUpdatesReceived,
		mlbOpensSent, mlbOpensReceived, mlbNotificationsSent, mlbKeepalivesSent, mlbKeepalivesReceived,
		mlbRefreshSent, mlbTotalSent, mlbTotalReceived} {
		ch <- d
	}
}

type peerVRF struct{ peer, vrf string }

func (c metallbCollector) Collect(ch chan<- prometheus.Metric) {
	byPeer := map[peerVRF]*peerCounts{}
	c.s.mu.Lock()
	for name, sess := range c.s.sessions {
		k := peerVRF{metallbPeer(sess), metallbVRF(sess)}
		pc := byPeer[k]
		if pc == nil {
			pc = &peerCounts{}
			byPeer[k] = pc
		}
		// Two BGPPeers to one address and port would be one series: add up.
		sess.metallbCounts(pc, c.s.metrics.wanted[name])
	}
	c.s.mu.Unlock()
	pending := map[string]int{}
	for k, pc := range byPeer {
		pending[k.peer] += pc.pending
		up := 0.0
		if pc.up {
			up = 1
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, k.peer, k.vrf)
		}
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), k.peer, k.vrf)
		}
		gauge(mlbSessionUp, up)
		gauge(mlbAnnounced, float64(pc.announced))
		counter(mlbUpdatesSent, pc.updatesOut)
		counter(mlbUpdatesReceived, pc.updatesIn)
		counter(mlbOpensSent, pc.opensOut)
		counter(mlbOpensReceived, pc.opensIn)
		counter(mlbNotificationsSent, pc.notificationsOut)
		counter(mlbKeepalivesSent, pc.keepalivesOut)
		counter(mlbKeepalivesReceived, pc.keepalivesIn)
		counter(mlbRefreshSent, pc.refreshOut)
		counter(mlbTotalSent, pc.totalOut)
		counter(mlbTotalReceived, pc.totalIn)
	}
	for peer, n := range pending {
		ch <- prometheus.MustNewConstMetric(mlbPending, prometheus.GaugeValue, float64(n), peer)
	}
}

// metallbPeer is MetalLB's peer label: address and port, the address
// unbracketed ("fd00::2:179") as MetalLB prints it.
func metallbPeer(s *session) string {
	port := s.spec.PeerPort
	if port == 0 {
		port = 179
	}
	return fmt.Sprintf("%s:%d", s.spec.PeerAddress, port)
}

// metallbVRF is MetalLB's vrf label: the VRF name, "default" for none.
func metallbVRF(s *session) string {
	if s.spec.VRFName != "" {
		return s.spec.VRFName
	}
	return "default"
}

// metallbCounts adds the session's values to pc; wanted is the number of
// prefixes the table holds for it. The caller holds the Speaker's lock.
func (s *session) metallbCounts(pc *peerCounts, wanted int) {
	up := s.up.Load()
	pc.up = pc.up || up
	pc.pending += wanted
	if up && s.ready() {
		// Advertised: wanted, less those whose path call failed and is retried.
		pc.announced += max(wanted-len(s.dirty), 0)
	}
	discarded := s.stats.discardedUpdates.Load()
	pc.updatesIn += discarded
	if s.srv == nil || s.peer == nil {
		return
	}
	var msgs *api.Messages
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: s.peer.Conf.NeighborAddress}, func(p *api.Peer) {
		msgs = p.GetState().GetMessages()
	})
	if msgs == nil {
		return
	}
	out, in := msgs.GetSent(), msgs.GetReceived()
	pc.opensOut += out.GetOpen()
	pc.updatesOut += out.GetUpdate()
	pc.keepalivesOut += out.GetKeepalive()
	pc.notificationsOut += out.GetNotification()
	pc.refreshOut += out.GetRefresh()
	pc.totalOut += out.GetTotal()
	pc.opensIn += in.GetOpen()
	pc.totalIn += in.GetTotal()
	// GoBGP saw a KEEPALIVE in place of every UPDATE the relay dropped since
	// this neighbor was added; those were UPDATEs on the wire.
	swapped := discarded - min(s.discardedAtAdd, discarded)
	pc.keepalivesIn += in.GetKeepalive() - min(swapped, in.GetKeepalive())
}
