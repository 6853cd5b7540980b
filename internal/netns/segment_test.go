package netns_test

import (
	"net/netip"
	"testing"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// A Segment's hosts reach each other through the hub's bridge, a port set
// down shows as down, and Close removes every namespace.
func TestSegment(t *testing.T) {
	needRoot(t)
	lab := netns.NewLab()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = lab.Close()
		}
	})
	seg, err := lab.Segment("sh", []string{"sa", "sb", "sc"}, [][]string{
		{"10.255.3.1/24", "fd00:255:3::1/64"}, {"10.255.3.2/24"}, // sc without addresses
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seg.Hosts) != 3 || len(seg.Ports) != 3 || seg.Hub != "elbsh"+lab.ID() {
		t.Fatalf("segment %+v", seg)
	}
	udpExchange(t, seg.Hosts[0], seg.Hosts[1], netip.MustParseAddr("10.255.3.1"), netip.MustParseAddr("10.255.3.2"))
	udpExchange(t, seg.Hosts[1], seg.Hosts[0], netip.MustParseAddr("10.255.3.2"), netip.MustParseAddr("10.255.3.1"))
	if err := netns.SetLinkUp(seg.Hub, seg.Ports[2], false); err != nil {
		t.Fatal(err)
	}
	if up, err := netns.LinkUp(seg.Hub, seg.Ports[2]); err != nil || up {
		t.Fatalf("port down: up = %v, %v", up, err)
	}
	if _, err := lab.Segment("sx", []string{"sy"}, [][]string{{"not an address"}}); err == nil {
		t.Error("Segment took a malformed address")
	}
	all := append([]string{seg.Hub}, seg.Hosts...)
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	for _, n := range all {
		if netns.Exists(n) {
			t.Errorf("namespace %s left after Close", n)
		}
	}
}
