package backend

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// L2Owned follows the entry of one IP through its neighbour events: the
// time the wanted MAC took it, or since when that was earlier.
func TestL2Owned(t *testing.T) {
	ip := netip.MustParseAddr("192.168.50.200")
	other := netip.MustParseAddr("192.168.50.201")
	mac1 := net.HardwareAddr{2, 0, 192, 168, 50, 21}
	mac2 := net.HardwareAddr{2, 0, 192, 168, 50, 22}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(ms int, a netip.Addr, mac net.HardwareAddr, state int) netns.NeighEvent {
		return netns.NeighEvent{At: at(ms), IP: a, Neighbor: netns.Neighbor{MAC: mac, State: state}}
	}
	del := func(ms int) netns.NeighEvent {
		e := ev(ms, ip, nil, netlink.NUD_FAILED)
		e.Delete = true
		return e
	}
	tests := []struct {
		name   string
		evs    []netns.NeighEvent
		since  int
		want   net.HardwareAddr
		wantAt int
		wantOK bool
		fresh  bool
	}{
		{name: "no events", want: mac1},
		{name: "resolved after since", evs: []netns.NeighEvent{ev(10, ip, nil, netlink.NUD_INCOMPLETE), ev(12, ip, mac1, netlink.NUD_REACHABLE)},
			since: 5, want: mac1, wantAt: 12, wantOK: true},
		{name: "held before since: since", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(30, ip, mac1, netlink.NUD_STALE)},
			since: 20, want: mac1, wantAt: 20, wantOK: true},
		{name: "another MAC", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE)}, want: mac2},
		{name: "taken over: the change", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(40, ip, mac2, netlink.NUD_STALE),
			ev(41, ip, mac2, netlink.NUD_REACHABLE)}, since: 20, want: mac2, wantAt: 40, wantOK: true},
		{name: "away and back counts from the return", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(25, ip, mac2, netlink.NUD_REACHABLE),
			ev(50, ip, mac1, netlink.NUD_REACHABLE)}, since: 20, want: mac1, wantAt: 50, wantOK: true},
		{name: "flushed", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), del(30)}, want: mac1},
		{name: "failed", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(30, ip, nil, netlink.NUD_FAILED)}, want: mac1},
		{name: "probe of the held MAC keeps it", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(30, ip, mac1, netlink.NUD_PROBE)},
			since: 10, want: mac1, wantAt: 10, wantOK: true},
		{name: "fresh: held before since is not enough", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE)},
			since: 10, want: mac1, fresh: true},
		{name: "fresh: resolved again after since", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), del(10), ev(12, ip, mac1, netlink.NUD_REACHABLE)},
			since: 10, want: mac1, wantAt: 12, wantOK: true, fresh: true},
		{name: "other IPs ignored", evs: []netns.NeighEvent{ev(1, ip, mac1, netlink.NUD_REACHABLE), ev(30, other, mac2, netlink.NUD_REACHABLE)},
			want: mac1, wantAt: 1, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := L2Owned(tc.evs, ip, tc.want, at(tc.since), tc.fresh)
			if ok != tc.wantOK || (ok && !got.Equal(at(tc.wantAt))) {
				t.Fatalf("l2Owned = %v, %v; want %v, %v", got.Sub(t0), ok, at(tc.wantAt).Sub(t0), tc.wantOK)
			}
		})
	}
}
