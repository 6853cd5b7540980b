package lab

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/internal/netns"
)

var (
	benchT0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	benchIP  = netip.MustParseAddr("192.168.50.130")
	benchIP2 = netip.MustParseAddr("192.168.50.131")
	benchMAC = map[string]net.HardwareAddr{
		"node1": {2, 0, 192, 168, 50, 21},
		"node2": {2, 0, 192, 168, 50, 22},
	}
)

func benchAt(ms int) time.Time { return benchT0.Add(time.Duration(ms) * time.Millisecond) }

func benchNodeOf(mac net.HardwareAddr) string {
	for n, m := range benchMAC {
		if m.String() == mac.String() {
			return n
		}
	}
	return ""
}

// Two replies to one request are two owners; a gratuitous ARP, replies
// before since and one node's replies to successive requests are not.
func TestDoubleAnswers(t *testing.T) {
	a := func(ms int, ip netip.Addr, node string, round uint64) ARPAnswer {
		return ARPAnswer{At: benchAt(ms), IP: ip, MAC: benchMAC[node], Node: node, Round: round}
	}
	answers := []ARPAnswer{
		a(0, benchIP, "node1", 1), a(1, benchIP, "node2", 1), // before since
		a(20, benchIP, "node1", 2),
		a(25, benchIP, "node2", 0), // gratuitous
		a(40, benchIP, "node2", 3),
		a(60, benchIP, "node2", 4), a(61, benchIP, "node1", 4), a(62, benchIP, "node1", 4),
		a(60, benchIP2, "node1", 4), // another IP's request 4
	}
	got := DoubleAnswers(answers, benchAt(10))
	if len(got) != 1 || got[0].Round != 4 || got[0].IP != benchIP || !slices.Equal(got[0].Nodes, []string{"node2", "node1"}) || !got[0].At.Equal(benchAt(61)) {
		t.Fatalf("DoubleAnswers = %+v", got)
	}
	if got := DoubleAnswers(answers, benchAt(0)); len(got) != 2 || got[0].Round != 1 {
		t.Errorf("DoubleAnswers from 0 = %+v", got)
	}
}

// The probe answers fold into runs of nodes; the first answers of another
// node, or of a node, after a time are found.
func TestProbeAnswers(t *testing.T) {
	var as []ProbeAnswer
	for i, n := range []string{"node1", "node1", "node2", "node2", "node1", "node1"} {
		as = append(as, ProbeAnswer{At: benchAt(10 * i), Node: n})
	}
	if got := answerRuns(as); !slices.Equal(got, []string{"node1", "node2", "node1"}) {
		t.Errorf("answerRuns = %v", got)
	}
	var blip []ProbeAnswer
	for i, n := range []string{"node1", "node1", "node1", "node2", "node1", "node2", "node2", "node2", "node1", "node1", "node1"} {
		blip = append(blip, ProbeAnswer{At: benchAt(10 * i), Node: n})
	}
	if got := stableRuns(blip, 3); !slices.Equal(got, []string{"node1", "node2", "node1"}) {
		t.Errorf("stableRuns = %v (answerRuns %v)", got, answerRuns(blip))
	}
	if a, ok := firstOther(as, "node1", benchAt(5)); !ok || a.Node != "node2" || !a.At.Equal(benchAt(20)) {
		t.Errorf("firstOther = %+v %v", a, ok)
	}
	if _, ok := firstOther(as, "node1", benchAt(35)); ok {
		t.Error("firstOther after the last node2 answer found one")
	}
	if a, ok := firstFrom(as, "node1", benchAt(25)); !ok || !a.At.Equal(benchAt(40)) {
		t.Errorf("firstFrom = %+v %v", a, ok)
	}
	if got := inWindow(as, benchAt(10), benchAt(30)); len(got) != 3 {
		t.Errorf("inWindow = %v", got)
	}
}

// The neighbour entry's changes to another node's MAC in a window, and the
// node an entry resolved to afresh.
func TestNeighbourFigures(t *testing.T) {
	ev := func(ms int, node string, state int) netns.NeighEvent {
		return netns.NeighEvent{At: benchAt(ms), IP: benchIP, Neighbor: netns.Neighbor{MAC: benchMAC[node], State: state}}
	}
	evs := []netns.NeighEvent{
		ev(0, "node1", netlink.NUD_REACHABLE),
		ev(50, "node1", netlink.NUD_STALE), // same MAC: no change
		ev(100, "node2", netlink.NUD_REACHABLE),
		{At: benchAt(120), IP: benchIP2, Neighbor: netns.Neighbor{MAC: benchMAC["node1"], State: netlink.NUD_REACHABLE}},
		ev(200, "node1", netlink.NUD_REACHABLE),
		ev(300, "node2", netlink.NUD_REACHABLE), // after the window
	}
	if n, seq := macChanges(evs, benchIP, benchAt(10), benchAt(250), benchNodeOf); n != 2 || !slices.Equal(seq, []string{"node1", "node2", "node1"}) {
		t.Errorf("macChanges = %d %v", n, seq)
	}
	if n, _ := macChanges(evs, benchIP, benchAt(150), benchAt(250), benchNodeOf); n != 1 {
		t.Errorf("macChanges from 150 ms = %d", n)
	}
	del := netns.NeighEvent{At: benchAt(400), IP: benchIP, Delete: true}
	if got := resolvedSince(evs, benchIP, benchAt(150), benchNodeOf); got != "node2" {
		t.Errorf("resolvedSince = %q", got)
	}
	if got := resolvedSince(append(evs, del), benchIP, benchAt(150), benchNodeOf); got != "" {
		t.Errorf("resolvedSince after a deletion = %q", got)
	}
	if got := resolvedSince(evs, benchIP, benchAt(350), benchNodeOf); got != "" {
		t.Errorf("resolvedSince with nothing since = %q", got)
	}
}

func TestSpread(t *testing.T) {
	c := countByNode(map[string]string{"a": "node1", "b": "node1", "c": "node2", "d": "node1"}, []string{"node1", "node2", "node3"})
	if c["node3"] != 0 || c["node1"] != 3 {
		t.Fatalf("countByNode = %v", c)
	}
	if r := spreadRatio(c); r < 2.24 || r > 2.26 { // 3 / (4/3)
		t.Errorf("spreadRatio = %v", r)
	}
	if r := spreadRatio(map[string]int{"node1": 22, "node2": 20, "node3": 18}); r > L2SpreadGoal {
		t.Errorf("22 of 60 over 3 nodes: %v > %v", r, L2SpreadGoal)
	}
	if got := formatSpread(c, []string{"node1", "node2", "node3"}); got != "node1 3, node2 1, node3 0" {
		t.Errorf("formatSpread = %q", got)
	}
}

// The bench's L2 segment holds the Services' addresses and the nodes'.
func TestL2BenchTopology(t *testing.T) {
	topo, err := L2BenchTopology(5, 100)
	if err != nil {
		t.Fatal(err)
	}
	if topo.L2 == nil || topo.L2.Subnet != netip.MustParsePrefix("192.168.50.0/24") {
		t.Fatalf("L2 = %+v", topo.L2)
	}
	if topo, err = L2BenchTopology(5, 1000); err != nil || topo.L2.Subnet != netip.MustParsePrefix("192.168.0.0/16") {
		t.Fatalf("1,000 Services: %v %+v", err, topo.L2)
	}
	if _, err := L2BenchTopology(5, 40000); err == nil {
		t.Error("40,000 Services: no error")
	}
}
