package bgp

import (
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// series renders every series of the named family as `labels=value`, sorted.
func series(t *testing.T, reg *prometheus.Registry, name string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, strings.Join(ls, ",")+"="+strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	sort.Strings(out)
	return out
}

// The metallb_bgp_* series come from the session's own state at scrape time:
// GoBGP's message counters for what it sent and received, the relay's count
// of the UPDATEs it swapped for KEEPALIVEs, and the route table.
func TestMetalLBBGPMetrics(t *testing.T) {
	fs := &fakeServers{}
	reg := prometheus.NewRegistry()
	sp := New(Options{Logger: slog.New(slog.DiscardHandler), newServer: fs.new, newRelay: fs.newRelay, Registerer: reg,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	t.Cleanup(sp.Close)
	tor2 := spec("tor2")
	tor2.PeerAddress, tor2.PeerPort = netip.MustParseAddr("fd00::2"), 1179
	if err := sp.SetSessions([]announce.Session{spec("tor1"), tor2}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Apply("ns/web", []announce.Route{r("tor1", "203.0.113.5/32", 0), r("tor2", "203.0.113.5/32", 0)}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Apply("ns/db", []announce.Route{r("tor1", "203.0.113.6/32", 0)}); err != nil {
		t.Fatal(err)
	}
	// Both sessions are down: nothing is being advertised, two and one
	// prefixes are wanted.
	for name, want := range map[string][]string{
		"metallb_bgp_session_up":               {"peer=10.0.0.1:179,vrf=default=0", "peer=fd00::2:1179,vrf=default=0"},
		"metallb_bgp_announced_prefixes_total": {"peer=10.0.0.1:179,vrf=default=0", "peer=fd00::2:1179,vrf=default=0"},
		"metallb_bgp_pending_prefixes_total":   {"peer=10.0.0.1:179=2", "peer=fd00::2:1179=1"},
	} {
		if got := series(t, reg, name); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// tor1 comes up; GoBGP has counted its messages; the relay swapped 4 of
	// the peer's UPDATEs for KEEPALIVEs (GoBGP counted them as KEEPALIVEs).
	sp.mu.Lock()
	sess := sp.sessions["tor1"]
	srv := sess.srv.(*fakeGoBGP)
	addr := sess.peer.Conf.NeighborAddress
	sp.mu.Unlock()
	sess.stats.discardedUpdates.Add(4)
	srv.mu.Lock()
	srv.peers[addr].State.Messages = &api.Messages{
		Sent:     &api.Message{Open: 1, Update: 3, Keepalive: 20, Notification: 1, Refresh: 2, Total: 27},
		Received: &api.Message{Open: 1, Update: 0, Keepalive: 30, Notification: 0, Total: 31},
	}
	srv.mu.Unlock()
	sess.setUp(true)
	for name, want := range map[string]string{
		"metallb_bgp_session_up":               "peer=10.0.0.1:179,vrf=default=1",
		"metallb_bgp_announced_prefixes_total": "peer=10.0.0.1:179,vrf=default=2",
		"metallb_bgp_updates_total":            "peer=10.0.0.1:179,vrf=default=3",
		"metallb_bgp_updates_total_received":   "peer=10.0.0.1:179,vrf=default=4",
		"metallb_bgp_opens_sent":               "peer=10.0.0.1:179,vrf=default=1",
		"metallb_bgp_opens_received":           "peer=10.0.0.1:179,vrf=default=1",
		"metallb_bgp_notifications_sent":       "peer=10.0.0.1:179,vrf=default=1",
		"metallb_bgp_keepalives_sent":          "peer=10.0.0.1:179,vrf=default=20",
		"metallb_bgp_keepalives_received":      "peer=10.0.0.1:179,vrf=default=26",
		"metallb_bgp_route_refresh_sent":       "peer=10.0.0.1:179,vrf=default=2",
		"metallb_bgp_total_sent":               "peer=10.0.0.1:179,vrf=default=27",
		"metallb_bgp_total_received":           "peer=10.0.0.1:179,vrf=default=31",
	} {
		got := series(t, reg, name)
		if len(got) == 0 || got[0] != want {
			t.Errorf("%s = %v, want %s first", name, got, want)
		}
	}
	// A prefix whose AddPath failed is wanted, not advertised.
	sp.mu.Lock()
	sess.dirty[netip.MustParsePrefix("203.0.113.6/32")] = true
	sp.mu.Unlock()
	if got := series(t, reg, "metallb_bgp_announced_prefixes_total"); got[0] != "peer=10.0.0.1:179,vrf=default=1" {
		t.Errorf("with one prefix failing: %v", got)
	}
	if got := series(t, reg, "metallb_bgp_pending_prefixes_total"); got[0] != "peer=10.0.0.1:179=2" {
		t.Errorf("pending with one prefix failing: %v", got)
	}
	sp.mu.Lock()
	delete(sess.dirty, netip.MustParsePrefix("203.0.113.6/32"))
	sp.mu.Unlock()

	// A removed peer's series are gone.
	if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
		t.Fatal(err)
	}
	if got := series(t, reg, "metallb_bgp_session_up"); len(got) != 1 {
		t.Errorf("after removing tor2: %v", got)
	}
}

// gathered replays one scrape: a collector that returns the same families
// every time.
type gathered []*dto.MetricFamily

func (g gathered) Describe(chan<- *prometheus.Desc) {}

func (g gathered) Collect(ch chan<- prometheus.Metric) {
	for _, mf := range g {
		for _, m := range mf.GetMetric() {
			var names, values []string
			for _, l := range m.GetLabel() {
				names, values = append(names, l.GetName()), append(values, l.GetValue())
			}
			d := prometheus.NewDesc(mf.GetName(), mf.GetHelp(), names, nil)
			switch {
			case m.Gauge != nil:
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
			case m.Counter != nil:
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
			}
		}
	}
}

// A scrape costs the same however many prefixes are announced: the wanted
// counts are kept as routes change, not recounted.
func BenchmarkMetalLBScrape(b *testing.B) {
	for _, n := range []int{100, 20000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			fs := &fakeServers{}
			reg := prometheus.NewRegistry()
			sp := New(Options{Logger: slog.New(slog.DiscardHandler), newServer: fs.new, newRelay: fs.newRelay, Registerer: reg})
			defer sp.Close()
			if err := sp.SetSessions([]announce.Session{spec("tor1")}); err != nil {
				b.Fatal(err)
			}
			base := netip.MustParseAddr("10.128.0.0")
			for i := range n {
				p := netip.PrefixFrom(base, 32)
				base = base.Next()
				if err := sp.Apply("ns/s"+strconv.Itoa(i), []announce.Route{{Peer: "tor1", Prefix: p}}); err != nil {
					b.Fatal(err)
				}
			}
			c := metallbCollector{sp}
			ch := make(chan prometheus.Metric, 64)
			b.ResetTimer()
			for range b.N {
				go func() { c.Collect(ch); close(ch) }()
				for range ch {
				}
				ch = make(chan prometheus.Metric, 64)
			}
		})
	}
}
