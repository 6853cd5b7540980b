package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddBridge creates an up bridge in a namespace. Multicast snooping is off: with no
// MLD querier on the segment, snooping can drop the first IPv6 neighbour solicitations.
func AddBridge(nsName, bridge string) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		off := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}, MulticastSnooping: &off}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("netns %s: add bridge %s: %w", nsName, bridge, err)
		}
		if err := h.LinkSetUp(br); err != nil {
			return fmt.Errorf("netns %s: bridge %s up: %w", nsName, bridge, err)
		}
		return nil
	})
}

// AddVeth creates a veth pair: ifName in nsName and peerName in peerNS, both up.
func AddVeth(nsName, ifName, peerNS, peerName string) error {
	peer, err := ns.GetNS(Path(peerNS))
	if err != nil {
		return fmt.Errorf("netns %s: %w", peerNS, err)
	}
	defer peer.Close()
	err = Do(nsName, func() error {
		_, _, err := ip.SetupVethWithName(ifName, peerName, 1500, "", peer)
		return err
	})
	if err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %w", nsName, ifName, peerNS, peerName, err)
	}
	return SetLinkUp(nsName, ifName, true)
}

// Connect joins two namespaces with a veth pair, ifA in nsA and ifB in nsB (names
// of at most 15 bytes), gives each end its addresses and brings both up.
func Connect(nsA, ifA string, addrsA []netip.Prefix, nsB, ifB string, addrsB []netip.Prefix) error {
	if err := AddVeth(nsA, ifA, nsB, ifB); err != nil {
		return err
	}
	for _, a := range addrsA {
		if err := AddAddress(nsA, ifA, a); err != nil {
			return err
		}
	}
	for _, a := range addrsB {
		if err := AddAddress(nsB, ifB, a); err != nil {
			return err
		}
	}
	return nil
}

// AttachToBridge enslaves ifName to bridge (both in nsName).
func AttachToBridge(nsName, ifName, bridge string) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		br, err := h.LinkByName(bridge)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, bridge, err)
		}
		if err := h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("netns %s: attach %s to %s: %w", nsName, ifName, bridge, err)
		}
		return nil
	})
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddress assigns addr (with its prefix length) to ifName and returns once the
// kernel delivers packets for it locally. IPv6 addresses skip duplicate address
// detection; their local route still appears asynchronously, hence the wait.
func AddAddress(nsName, ifName string, addr netip.Prefix) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		a := &netlink.Addr{IPNet: ipnet(addr)}
		if addr.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(l, a); err != nil {
			return fmt.Errorf("netns %s: address %v on %s: %w", nsName, addr, ifName, err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			rs, err := h.RouteGet(addr.Addr().AsSlice())
			if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("netns %s: address %v on %s is not local after 2s (err %v)", nsName, addr, ifName, err)
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// DelAddress removes addr from ifName; a missing address is no error.
func DelAddress(nsName, ifName string, addr netip.Prefix) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		if err := h.AddrDel(l, &netlink.Addr{IPNet: ipnet(addr)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("netns %s: delete address %v on %s: %w", nsName, addr, ifName, err)
		}
		return nil
	})
}

// AddRoute adds (or replaces) a route to dst via gw.
func AddRoute(nsName string, dst netip.Prefix, gw netip.Addr) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		r := &netlink.Route{Dst: ipnet(dst.Masked()), Gw: gw.AsSlice()}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("netns %s: route %v via %v: %w", nsName, dst, gw, err)
		}
		return nil
	})
}

// SetLinkUp sets ifName administratively up or down.
func SetLinkUp(nsName, ifName string, up bool) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
		if err != nil {
			return fmt.Errorf("netns %s: set %s up=%v: %w", nsName, ifName, up, err)
		}
		return nil
	})
}

// LinkUp reports whether ifName is administratively up.
func LinkUp(nsName, ifName string) (bool, error) {
	var up bool
	err := withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		up = l.Attrs().Flags&net.FlagUp != 0
		return nil
	})
	return up, err
}

// LinkStats returns the counters of ifName.
func LinkStats(nsName, ifName string) (netlink.LinkStatistics, error) {
	var st netlink.LinkStatistics
	err := withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		if s := l.Attrs().Statistics; s != nil {
			st = *s
		}
		return nil
	})
	return st, err
}

// Sysctl writes value to /proc/sys/<key> (key with slashes, e.g.
// "net/ipv4/fib_multipath_hash_policy") inside the namespace.
func Sysctl(nsName, key, value string) error {
	return Do(nsName, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("netns %s: sysctl %s=%s: %w", nsName, key, value, err)
		}
		return nil
	})
}

// RouteNextHops returns the next-hops of the kernel route for exactly dst in the
// namespace's main table (empty when there is none), sorted.
func RouteNextHops(nsName string, dst netip.Prefix) ([]netip.Addr, error) {
	var out []netip.Addr
	err := withHandle(nsName, func(h *netlink.Handle) error {
		fam := netlink.FAMILY_V4
		if dst.Addr().Is6() {
			fam = netlink.FAMILY_V6
		}
		routes, err := h.RouteListFiltered(fam, &netlink.Route{Dst: ipnet(dst.Masked())}, netlink.RT_FILTER_DST)
		if err != nil {
			return fmt.Errorf("netns %s: list routes %v: %w", nsName, dst, err)
		}
		for _, r := range routes {
			if r.Gw != nil {
				a, _ := netip.AddrFromSlice(r.Gw)
				out = append(out, a.Unmap())
			}
			for _, nh := range r.MultiPath {
				a, _ := netip.AddrFromSlice(nh.Gw)
				out = append(out, a.Unmap())
			}
		}
		return nil
	})
	slices.SortFunc(out, netip.Addr.Compare)
	return out, err
}

// SetLinkMAC gives ifName the MAC mac (taken down for the change if the
// driver refuses it live, and brought back up).
func SetLinkMAC(nsName, ifName string, mac net.HardwareAddr) error {
	return withHandle(nsName, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("netns %s: %s: %w", nsName, ifName, err)
		}
		if err := h.LinkSetHardwareAddr(l, mac); err == nil {
			return nil
		}
		up := l.Attrs().Flags&net.FlagUp != 0
		if up {
			if err := h.LinkSetDown(l); err != nil {
				return fmt.Errorf("netns %s: set %s down for its MAC: %w", nsName, ifName, err)
			}
		}
		if err := h.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("netns %s: MAC %v on %s: %w", nsName, mac, ifName, err)
		}
		if up {
			if err := h.LinkSetUp(l); err != nil {
				return fmt.Errorf("netns %s: set %s up after its MAC: %w", nsName, ifName, err)
			}
		}
		return nil
	})
}
