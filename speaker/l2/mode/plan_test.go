package mode

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
)

func svc(key, ip string, nodes []string, ifs []string, all bool) *announce.L2Service {
	s := &announce.L2Service{Key: key, Nodes: nodes, Interfaces: ifs, AllInterfaces: all}
	for _, a := range splitComma(ip) {
		s.IPs = append(s.IPs, netip.MustParseAddr(a))
	}
	return s
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

var abc = []string{"a", "b", "c"}

// many returns n Services on consecutive IPs, every one eligible on nodes,
// answered on every interface.
func many(n int, nodes []string) []*announce.L2Service {
	out := make([]*announce.L2Service, n)
	ip := netip.MustParseAddr("192.0.2.1")
	for i := range out {
		out[i] = &announce.L2Service{Key: fmt.Sprintf("ns/s%03d", i), IPs: []netip.Addr{ip}, Nodes: nodes, AllInterfaces: true}
		ip = ip.Next()
	}
	return out
}

// Every node, fed the same Services and the same alive set, agrees on the
// owners, and exactly one node answers each Service (none when none of its
// candidates is alive); a node not alive answers for nothing and owns
// nothing; a node going down moves its own Services only.
func TestComputeAgreesAcrossNodes(t *testing.T) {
	svcs := append(many(300, abc),
		svc("ns/local-b", "198.51.100.200", []string{"b"}, nil, true),                // externalTrafficPolicy Local: b's endpoint only
		svc("ns/nowhere", "198.51.100.201", []string{"d"}, nil, true),                // its one candidate has no speaker
		svc("ns/dual", "198.51.100.202,2001:db8::202", abc, []string{"eth1"}, false), // both families on one node
	)
	for _, alive := range [][]string{abc, {"a", "c"}, {"b"}, {}} {
		owners := map[string]string{}
		answered := map[string]int{}
		for _, self := range abc {
			p := Compute(Inputs{Self: self, Services: svcs, Alive: alive, Interfaces: []string{"eth0"}})
			for k, o := range p.Owner {
				if prev, ok := owners[k]; ok && prev != o {
					t.Fatalf("alive %v: %s owned by %q at one node, %q at %s", alive, k, prev, o, self)
				}
				owners[k] = o
			}
			for k := range p.Serving {
				answered[k]++
				if p.Owner[k] != self {
					t.Errorf("alive %v: %s serves %s owned by %q", alive, self, k, p.Owner[k])
				}
				if !slices.Contains(alive, self) {
					t.Errorf("alive %v: %s is not alive and answers %s", alive, self, k)
				}
			}
		}
		for _, s := range svcs {
			want := 1
			if !slices.ContainsFunc(s.Nodes, func(n string) bool { return slices.Contains(alive, n) }) {
				want = 0
			}
			if answered[s.Key] != want {
				t.Errorf("alive %v: %s answered by %d nodes, want %d (owner %q)", alive, s.Key, answered[s.Key], want, owners[s.Key])
			}
		}
		if o := owners["ns/local-b"]; slices.Contains(alive, "b") && o != "b" {
			t.Errorf("alive %v: the Local Service is owned by %q, not b, its only candidate", alive, o)
		}
	}

	before := Compute(Inputs{Self: "a", Services: svcs, Alive: abc}).Owner
	after := Compute(Inputs{Self: "a", Services: svcs, Alive: []string{"a", "c"}}).Owner
	for k, o := range before {
		if o != "b" && after[k] != o {
			t.Errorf("b going down moved %s from %s to %s", k, o, after[k])
		}
		if o == "b" && k != "ns/local-b" && after[k] == "b" {
			t.Errorf("%s still on b, which is down", k)
		}
	}
}

// What this node answers on which interface: the named ones, and with
// AllInterfaces every eligible one; both IPs of a dual-stack Service.
func TestComputeInterfaces(t *testing.T) {
	svcs := []*announce.L2Service{
		svc("ns/named", "192.0.2.1", []string{"a"}, []string{"eth1"}, false),
		svc("ns/all", "192.0.2.2", []string{"a"}, nil, true),
		svc("ns/both", "192.0.2.3", []string{"a"}, []string{"eth9"}, true),
		svc("ns/dual", "192.0.2.4,2001:db8::4", []string{"a"}, []string{"eth1"}, false),
		svc("ns/none", "192.0.2.5", []string{"a"}, nil, false),      // no interface here: owned, answered nowhere
		{Key: "ns/noip", Nodes: []string{"a"}, AllInterfaces: true}, // not allocated yet
	}
	p := Compute(Inputs{Self: "a", Services: svcs, Alive: []string{"a"}, Interfaces: []string{"eth0", "eth1"}})
	wantAnswer := map[string][]netip.Addr{
		"eth0": addrs("192.0.2.2", "192.0.2.3"),
		"eth1": addrs("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "2001:db8::4"),
		"eth9": addrs("192.0.2.3"),
	}
	if len(p.Answer) != len(wantAnswer) {
		t.Errorf("answer %v, want %v", p.Answer, wantAnswer)
	}
	for ifName, want := range wantAnswer {
		if !slices.Equal(p.Answer[ifName], want) {
			t.Errorf("%s answers %v, want %v", ifName, p.Answer[ifName], want)
		}
	}
	wantServing := map[string][]string{"ns/named": {"eth1"}, "ns/all": {"eth0", "eth1"}, "ns/both": {"eth0", "eth1", "eth9"},
		"ns/dual": {"eth1"}, "ns/none": nil}
	if len(p.Serving) != len(wantServing) {
		t.Errorf("serving %v, want %v", p.Serving, wantServing)
	}
	for k, want := range wantServing {
		if got, ok := p.Serving[k]; !ok || !slices.Equal(got, want) {
			t.Errorf("%s served on %v (%v), want %v", k, got, ok, want)
		}
	}
}

var cfg = DefaultLiveness(100 * time.Millisecond) // Threshold 600 ms, Rejoin 1 s, Margin 100 ms

// Decide: nothing before Threshold + Rejoin from the start; then this node
// answers while its table lets it, or alone while it hears no one with its
// socket open; a node that is fenced is not in Alive, so Compute gives it
// nothing.
func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hold := t0.Add(cfg.Threshold + cfg.Rejoin)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	answering := liveness.View{Alive: []string{"a", "b"}, Answer: true}
	fenced := liveness.View{Alive: []string{"b"}, Down: []string{"c"}}
	for _, c := range []struct {
		name      string
		s         Standing
		answer    bool
		alone     bool
		alive     []string
		next      time.Time
		wantAlive bool
	}{
		{name: "before the hold, table answering", s: Standing{View: answering, Now: hold.Add(-1), LastHeard: hold.Add(-ms(10)), Receiving: true},
			alive: []string{"b"}, next: hold},
		{name: "after the hold, table answering", s: Standing{View: answering, Now: hold, LastHeard: hold.Add(-ms(10)), Receiving: true},
			answer: true, alive: []string{"a", "b"}, next: hold.Add(-ms(10) + cfg.Threshold + 1)},
		{name: "fenced: heard b, unconfirmed", s: Standing{View: fenced, Now: hold.Add(ms(500)), LastHeard: hold.Add(ms(450)), Receiving: true},
			alive: []string{"b"}, next: hold.Add(ms(450) + cfg.Threshold + 1)},
		{name: "alone: no one ever heard", s: Standing{Now: hold, Receiving: true}, answer: true, alone: true, alive: []string{"a"}},
		{name: "alone: every other silent beyond Threshold", s: Standing{View: liveness.View{Down: []string{"b"}}, Now: hold.Add(ms(700)), LastHeard: hold.Add(ms(100) - 1), Receiving: true},
			answer: true, alone: true, alive: []string{"a"}},
		{name: "not yet alone: silent for Threshold exactly", s: Standing{View: liveness.View{Down: []string{"b"}}, Now: hold.Add(ms(700)), LastHeard: hold.Add(ms(100)), Receiving: true},
			next: hold.Add(ms(700) + 1)},
		{name: "socket closed: never alone", s: Standing{Now: hold.Add(time.Hour)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.s.Self, c.s.Started = "a", t0
			d := Decide(cfg, c.s)
			if d.Answer != c.answer || d.Alone != c.alone || !slices.Equal(d.Alive, c.alive) || !d.Next.Equal(c.next) {
				t.Errorf("got answer %v alone %v alive %v next %v; want %v %v %v %v", d.Answer, d.Alone, d.Alive, d.Next.Sub(t0),
					c.answer, c.alone, c.alive, c.next.Sub(t0))
			}
			p := Compute(Inputs{Self: "a", Services: many(20, abc), Alive: d.Alive, Interfaces: []string{"eth0"}})
			if !d.Answer && len(p.Serving) > 0 {
				t.Errorf("not answering, yet serves %d Services", len(p.Serving))
			}
		})
	}
}

// With Leases: a node whose renewals fail while another's work does not
// answer (cut off from the apiserver, which the others reach); when no
// node's work (the apiserver down for all) nothing changes; a node with a
// silent Lease is down for a node whose own renewals work, and only then.
func TestDecideLeases(t *testing.T) {
	hold := t0.Add(cfg.Threshold + cfg.Rejoin)
	now := hold.Add(time.Second)
	hb := liveness.View{Alive: []string{"a", "b", "c"}, Answer: true}
	for _, c := range []struct {
		name         string
		lease        *liveness.View
		peerRenewing bool
		answer       bool
		fenced       bool
		alive        []string
	}{
		{"no leases", nil, true, true, false, []string{"a", "b", "c"}},
		{"renewing, c's Lease silent", &liveness.View{Answer: true, Down: []string{"c"}}, true, true, false, []string{"a", "b"}},
		{"cut off the apiserver, b renews", &liveness.View{Down: []string{"c"}}, true, false, true, []string{"b", "c"}},
		{"apiserver down for all", &liveness.View{Down: []string{"b", "c"}}, false, true, false, []string{"a", "b", "c"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(cfg, Standing{Self: "a", View: hb, Now: now, Started: t0, LastHeard: now, Receiving: true, Lease: c.lease, PeerRenewing: c.peerRenewing})
			if d.Answer != c.answer || d.LeaseFenced != c.fenced || !slices.Equal(d.Alive, c.alive) {
				t.Errorf("answer %v fenced %v alive %v; want %v %v %v", d.Answer, d.LeaseFenced, d.Alive, c.answer, c.fenced, c.alive)
			}
		})
	}
}

// With Leases, hearing no heartbeat is not enough to answer alone: the
// other speakers must be gone by their Leases too (or not exist), and this
// node's own renewals must work.
func TestDecideAloneWithLeases(t *testing.T) {
	hold := t0.Add(cfg.Threshold + cfg.Rejoin)
	now := hold.Add(time.Second)
	silent := liveness.View{Down: []string{"b"}}
	for _, c := range []struct {
		name   string
		lease  *liveness.View
		others bool
		alone  bool
	}{
		{"no leases", nil, true, true},
		{"b's Lease alive: its heartbeats are blocked, not gone", &liveness.View{Answer: true, Alive: []string{"a", "b"}}, true, false},
		{"b's Lease silent too: gone", &liveness.View{Answer: true, Alive: []string{"a"}, Down: []string{"b"}}, true, true},
		{"own renewals failing", &liveness.View{Down: []string{"b"}}, true, false},
		{"a cluster of one, apiserver down", &liveness.View{}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(cfg, Standing{Self: "a", View: silent, Now: now, Started: t0, LastHeard: t0, Receiving: true, Lease: c.lease, OthersExist: c.others})
			if d.Alone != c.alone || d.Answer != c.alone {
				t.Errorf("alone %v answer %v, want %v", d.Alone, d.Answer, c.alone)
			}
		})
	}
}

func TestEligible(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	up := net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	links := []Link{
		{"eth1", up, mac}, {"eth0", up | net.FlagRunning, mac},
		{"lo", net.FlagUp | net.FlagLoopback, nil},
		{"eth2", net.FlagBroadcast, mac},                // down
		{"wg0", net.FlagUp | net.FlagPointToPoint, nil}, // no broadcast, no MAC
		{"ib0", up, make(net.HardwareAddr, 20)},         // not Ethernet
		{"veth1234", up, mac}, {"cali99", up, mac}, {"kube-ipvs0", up, mac}, {"cni0", up, mac}, {"docker0", up, mac},
		{"bond0.100", up, mac},
	}
	if got, want := Eligible(links), []string{"bond0.100", "eth0", "eth1"}; !slices.Equal(got, want) {
		t.Errorf("eligible %v, want %v", got, want)
	}
}
