// Package netlab creates and removes the plumbing of a virtual fabric: named network
// namespaces (visible to `ip netns`), a Linux bridge, veth pairs, addresses, routes and
// per-namespace sysctls, and finds and signals the processes living in a namespace.
// Every function takes namespace names, and works from any goroutine: namespace
// switches happen on locked OS threads (containernetworking/plugins pkg/ns) and netlink
// requests go through per-namespace handles.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetNSDir is where named namespaces are bind-mounted (as by `ip netns add`).
const NetNSDir = "/var/run/netns"

// NetNSPath returns the path of a named namespace.
func NetNSPath(name string) string { return filepath.Join(NetNSDir, name) }

// NetNSExists reports whether a named namespace exists.
func NetNSExists(name string) bool { return ns.IsNSorErr(NetNSPath(name)) == nil }

// CreateNetNS creates a named namespace with `ip netns add` and brings its loopback up.
func CreateNetNS(ctx context.Context, name string) error {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns %s: ip netns add: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return SetLinkUp(name, "lo", true)
}

// DeleteNetNS removes a named namespace; a missing one is no error.
func DeleteNetNS(name string) error {
	if _, err := os.Stat(NetNSPath(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns %s: ip netns del: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs f with the calling OS thread switched into the named namespace. Sockets f
// creates belong to that namespace for their whole life.
func Do(name string, f func() error) error {
	return ns.WithNetNSPath(NetNSPath(name), func(ns.NetNS) error { return f() })
}

// handle opens a netlink handle bound to the named namespace.
func handle(name string) (*netlink.Handle, error) {
	nh, err := netns.GetFromPath(NetNSPath(name))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", name, err)
	}
	return h, nil
}

func withHandle(name string, f func(h *netlink.Handle) error) error {
	h, err := handle(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}

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
	peer, err := ns.GetNS(NetNSPath(peerNS))
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

func inode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// ProcessesIn lists the processes whose network namespace is the named one (the
// calling process excluded).
func ProcessesIn(nsName string) ([]int, error) {
	want, err := inode(NetNSPath(nsName))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", nsName, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if ino, err := inode(filepath.Join("/proc", e.Name(), "ns", "net")); err == nil && ino == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// ProcessState returns the state letter of a process from /proc/<pid>/stat ("R", "S",
// "T" for stopped, ...).
func ProcessState(pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", err
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return "", fmt.Errorf("pid %d: malformed stat", pid)
	}
	return string(b[i+2]), nil
}

// WaitStopped waits until every listed process is stopped (state T) or gone: a stop
// signal takes effect asynchronously, so a fault is in force only once this returns.
func WaitStopped(ctx context.Context, pids ...int) error {
	for _, pid := range pids {
		for {
			st, err := ProcessState(pid)
			if err != nil || st == "T" || st == "t" || st == "Z" || st == "X" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("pid %d not stopped (state %s): %w", pid, st, ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// SignalProcessesIn sends sig to every process in the named namespace and returns
// their pids.
func SignalProcessesIn(nsName string, sig syscall.Signal) ([]int, error) {
	pids, err := ProcessesIn(nsName)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signal %v to pid %d: %w", sig, pid, err))
		}
	}
	return pids, errors.Join(errs...)
}
