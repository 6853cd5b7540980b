package fabric

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// HostLinkPrefix starts the name of every link a fabric creates in the host's
// network namespace (with Options.ExternalSegment), so they are recognisably
// the project's.
const HostLinkPrefix = "elbt"

// HostLinkName is the host end of the i-th ToR's link to an external
// segment: "elbt" + the instance + the ToR's index, or a hash of the instance
// when that would exceed the 15 bytes of an interface name.
func HostLinkName(instance string, i int) string {
	n := fmt.Sprintf("%s%s%d", HostLinkPrefix, instance, i)
	if len(n) <= 15 {
		return n
	}
	h := sha256.Sum256([]byte(instance))
	return fmt.Sprintf("%s%s%d", HostLinkPrefix, hex.EncodeToString(h[:])[:8], i)
}

// attachExternal creates a ToR's namespace and links it to the host bridge
// ExternalSegment with addr (and addr6 when valid). The host end is recorded
// before it exists, so Down removes it after a failure half-way.
func (f *Fabric) attachExternal(ctx context.Context, ns, hostLink string, addr, addr6 netip.Addr) error {
	if err := netns.Create(ctx, ns); err != nil {
		return err
	}
	if err := f.update(func(s *State) {
		if !slices.Contains(s.HostLinks, hostLink) {
			s.HostLinks = append(s.HostLinks, hostLink)
		}
	}); err != nil {
		return err
	}
	if err := netns.AddHostVeth(ns, SegmentInterface, hostLink, f.state.ExternalSegment); err != nil {
		return err
	}
	if err := netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(addr, f.state.Topology.Segment.Bits())); err != nil {
		return err
	}
	if addr6.IsValid() && f.state.Topology.Segment6.IsValid() {
		return netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(addr6, f.state.Topology.Segment6.Bits()))
	}
	return nil
}

// deleteHostLinks deletes the instance's host links (deleting a ToR's
// namespace has usually taken them along already).
func (f *Fabric) deleteHostLinks() error {
	var errs []error
	for _, l := range f.state.HostLinks {
		errs = append(errs, netns.DeleteHostLink(l))
	}
	return errors.Join(errs...)
}

// ClientRoute is a route an external node needs so its replies reach a
// client: Dst via the client's ToR.
type ClientRoute struct {
	Dst netip.Prefix
	Via netip.Addr
}

// ClientRoutes are the routes every node needs back to the clients' links
// (what the fabric installs in its own nodes' namespaces), for callers with
// ExternalNodes.
func (f *Fabric) ClientRoutes() []ClientRoute {
	topo := f.state.Topology
	var out []ClientRoute
	for _, c := range topo.Clients {
		tor, _ := topo.ToR(c.ToR)
		out = append(out, ClientRoute{Dst: c.Link.Masked(), Via: tor.Address})
		if c.Link6.IsValid() && tor.Address6.IsValid() {
			out = append(out, ClientRoute{Dst: c.Link6.Masked(), Via: tor.Address6})
		}
	}
	return out
}
