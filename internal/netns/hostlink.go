package netns

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// AddHostVeth creates a veth pair between the caller's network namespace (the
// host) and a named namespace: hostName stays in the host and is enslaved to
// the host's bridge, ifName goes into nsName. Both ends are up. It joins a
// namespace to an L2 segment that lives in the host, such as a Docker
// network's bridge.
func AddHostVeth(nsName, ifName, hostName, bridge string) (err error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("host bridge %s: %w", bridge, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		return fmt.Errorf("host link %s is a %s, not a bridge", bridge, br.Type())
	}
	target, err := vnetns.GetFromPath(Path(nsName))
	if err != nil {
		return fmt.Errorf("netns %s: %w", nsName, err)
	}
	defer target.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName, MTU: br.Attrs().MTU}, PeerName: ifName,
		PeerNamespace: netlink.NsFd(int(target))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s - %s/%s: %w", hostName, nsName, ifName, err)
	}
	defer func() {
		if err != nil {
			_ = netlink.LinkDel(veth)
		}
	}()
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("host %s: %w", hostName, err)
	}
	if err := netlink.LinkSetMaster(host, br); err != nil {
		return fmt.Errorf("attach %s to host bridge %s: %w", hostName, bridge, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("host %s up: %w", hostName, err)
	}
	return SetLinkUp(nsName, ifName, true)
}

// DeleteHostLink deletes a link of the caller's network namespace (the
// host); a missing one is no error. Deleting one end of a veth deletes both.
func DeleteHostLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("host link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		// Read back: a veth whose other end's namespace is being torn down
		// goes away by itself, possibly between the lookup and the delete.
		var nf netlink.LinkNotFoundError
		if _, gone := netlink.LinkByIndex(l.Attrs().Index); errors.As(gone, &nf) {
			return nil
		}
		return fmt.Errorf("delete host link %s: %w", name, err)
	}
	return nil
}
