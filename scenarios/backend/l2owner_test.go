package backend

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// L2OwnedBy names which of several MACs holds the entry, and since when.
func TestL2OwnedBy(t *testing.T) {
	ip := netip.MustParseAddr("192.168.50.200")
	mac1 := net.HardwareAddr{2, 0, 192, 168, 50, 21}
	mac2 := net.HardwareAddr{2, 0, 192, 168, 50, 22}
	mac3 := net.HardwareAddr{2, 0, 192, 168, 50, 23}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(ms int, mac net.HardwareAddr) netns.NeighEvent {
		return netns.NeighEvent{At: at(ms), IP: ip, Neighbor: netns.Neighbor{MAC: mac, State: netlink.NUD_REACHABLE}}
	}
	macs := map[string]string{mac1.String(): "node1", mac2.String(): "node2"}
	evs := []netns.NeighEvent{ev(0, mac3), ev(100, mac2)}
	if node, when, ok := L2OwnedBy(evs, ip, macs, at(50), false); !ok || node != "node2" || !when.Equal(at(100)) {
		t.Errorf("node2 since 100 ms: %q %v %v", node, when, ok)
	}
	if node, when, ok := L2OwnedBy(evs, ip, macs, at(150), false); !ok || node != "node2" || !when.Equal(at(150)) {
		t.Errorf("held before since: %q %v %v", node, when, ok)
	}
	if _, _, ok := L2OwnedBy(evs, ip, macs, at(150), true); ok {
		t.Error("fresh: an entry taken before since counts")
	}
	if _, _, ok := L2OwnedBy(evs[:1], ip, macs, at(0), false); ok {
		t.Error("a MAC of no listed node counts")
	}
	del := netns.NeighEvent{At: at(200), IP: ip, Delete: true}
	if _, _, ok := L2OwnedBy(append(evs, del), ip, macs, at(0), false); ok {
		t.Error("a deleted entry counts")
	}
}

// Flaps: more than one change of MAC since a time.
func TestMACFlaps(t *testing.T) {
	ip := netip.MustParseAddr("192.168.50.200")
	mac1 := net.HardwareAddr{2, 0, 192, 168, 50, 21}
	mac2 := net.HardwareAddr{2, 0, 192, 168, 50, 22}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(ms int, mac net.HardwareAddr) netns.NeighEvent {
		return netns.NeighEvent{At: at(ms), IP: ip, Neighbor: netns.Neighbor{MAC: mac, State: netlink.NUD_REACHABLE}}
	}
	nodeOf := func(m net.HardwareAddr) string {
		if m.String() == mac1.String() {
			return "node1"
		}
		return "node2"
	}
	del := netns.NeighEvent{At: at(150), IP: ip, Delete: true}
	evs := []netns.NeighEvent{ev(0, mac1), ev(100, mac2), del, ev(160, mac2), ev(200, mac1), ev(300, mac2)}
	if got := macFlaps(evs, ip, at(250), nodeOf); got != nil {
		t.Errorf("one change since 250 ms: %v", got)
	}
	if got := macFlaps(evs[:4], ip, at(50), nodeOf); got != nil {
		t.Errorf("one change (a flush and the same MAC again): %v", got)
	}
	if got := macFlaps(evs, ip, at(150), nodeOf); len(got) != 2 {
		t.Errorf("two changes since 150 ms: %v", got)
	}
}
