package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Neighbor is an entry of a namespace's neighbour table (the ARP cache for
// IPv4, the NDP neighbour cache for IPv6).
type Neighbor struct {
	MAC   net.HardwareAddr // empty while unresolved
	State int              // netlink.NUD_* bits
}

// Resolved tells whether the entry holds a link-layer address in use: not
// being resolved (INCOMPLETE) and not FAILED.
func (n Neighbor) Resolved() bool {
	return len(n.MAC) > 0 && n.State != netlink.NUD_NONE && n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0
}

// Failed tells whether the kernel gave up resolving the entry (its
// solicitations went unanswered).
func (n Neighbor) Failed() bool { return n.State&netlink.NUD_FAILED != 0 }

// LookupNeighbor returns the neighbour entry for ip on ifName in the
// namespace; ok is false when there is none.
func LookupNeighbor(nsName, ifName string, ip netip.Addr) (n Neighbor, ok bool, err error) {
	err = withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		fam := netlink.FAMILY_V4
		if ip.Is6() {
			fam = netlink.FAMILY_V6
		}
		ns, err := h.NeighList(l.Attrs().Index, fam)
		if err != nil {
			return fmt.Errorf("netns %s: neighbours of %s: %w", nsName, ifName, err)
		}
		for _, e := range ns {
			if a, _ := netip.AddrFromSlice(e.IP); a.Unmap() == ip.Unmap() {
				n, ok = Neighbor{MAC: e.HardwareAddr, State: e.State}, true
				return nil
			}
		}
		return nil
	})
	return n, ok, err
}

// DeleteNeighbor removes the neighbour entry for ip on ifName; a missing one
// is no error.
func DeleteNeighbor(nsName, ifName string, ip netip.Addr) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		fam := netlink.FAMILY_V4
		if ip.Is6() {
			fam = netlink.FAMILY_V6
		}
		err = h.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: fam, IP: ip.AsSlice()})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netns %s: delete neighbour %v on %s: %w", nsName, ip, ifName, err)
		}
		return nil
	})
}

// NeighEvent is one kernel notification about a neighbour entry,
// timestamped on receipt: a new or changed entry (RTM_NEWNEIGH), or a
// removed one (Delete).
type NeighEvent struct {
	At     time.Time
	Delete bool
	IP     netip.Addr
	Neighbor
}

func (e NeighEvent) when() time.Time { return e.At }

func (e NeighEvent) String() string {
	op := "new"
	if e.Delete {
		op = "del"
	}
	return fmt.Sprintf("%s %s %s lladdr %v %s", e.At.Format("15:04:05.000000"), op, e.IP, e.MAC, NeighState(e.State))
}

// NeighState renders netlink.NUD_* bits as `ip neigh` does (REACHABLE,
// STALE, ...).
func NeighState(s int) string {
	names := []struct {
		bit  int
		name string
	}{
		{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"},
		{netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"},
		{netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"},
	}
	var out []string
	for _, n := range names {
		if s&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	if len(out) == 0 {
		return "NONE"
	}
	return strings.Join(out, ",")
}

// NeighWatch records every change of the IPv4 and IPv6 neighbour entries of
// one interface in one namespace, as the kernel reports them (the entries
// there when it started first, timestamped then): when a client learnt
// which MAC answers for an IP, to the microsecond, and every change since.
// Events, Since, WaitFor and Close are watchLog's.
type NeighWatch struct{ *watchLog[NeighEvent] }

// WatchNeighbors subscribes to the neighbour entries of ifName in namespace
// ns; Close ends the subscription.
func WatchNeighbors(ns, ifName string) (*NeighWatch, error) {
	var index int
	err := withHandle(ns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", ns, ifName, err)
		}
		index = l.Attrs().Index
		return nil
	})
	if err != nil {
		return nil, err
	}
	h, err := vnetns.GetFromPath(Path(ns))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer h.Close()
	w := &NeighWatch{newWatchLog[NeighEvent]("neighbour")}
	ch := make(chan netlink.NeighUpdate, 1024)
	err = netlink.NeighSubscribeWithOptions(ch, w.done, netlink.NeighSubscribeOptions{
		Namespace:     &h,
		ListExisting:  true,
		ErrorCallback: func(err error) { w.fail(fmt.Errorf("neighbour subscription in %s: %w", ns, err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: neighbour subscribe: %w", ns, err)
	}
	pump(w.watchLog, ns, ch, func(u netlink.NeighUpdate, at time.Time) (NeighEvent, bool) {
		n := u.Neigh
		if n.LinkIndex != index || (n.Family != netlink.FAMILY_V4 && n.Family != netlink.FAMILY_V6) {
			return NeighEvent{}, false
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			return NeighEvent{}, false
		}
		return NeighEvent{At: at, Delete: u.Type == unix.RTM_DELNEIGH, IP: ip.Unmap(),
			Neighbor: Neighbor{MAC: slices.Clone(n.HardwareAddr), State: n.State}}, true
	})
	return w, nil
}

// Latest is the last recorded event about ip (ok false: none).
func (w *NeighWatch) Latest(ip netip.Addr) (e NeighEvent, ok bool) {
	evs, _ := w.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].IP == ip.Unmap() {
			return evs[i], true
		}
	}
	return NeighEvent{}, false
}

// Probe sends one UDP datagram from namespace ns to ip's discard port (9),
// as a client with traffic for ip would: the kernel resolves ip, or
// re-validates a stale neighbour entry. A send the kernel refuses because
// ip is unresolved yet is no error.
func Probe(ns string, ip netip.Addr) error {
	return Do(ns, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(ip, 9).String())
		if err != nil {
			return fmt.Errorf("probe to %v from %s: %w", ip, ns, err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("probe"))
		return nil
	})
}
