package mode

import (
	"net"
	"slices"
	"strings"
)

// Link is what Eligible needs of one interface.
type Link struct {
	Name  string
	Flags net.Flags
	MAC   net.HardwareAddr
}

// excludedPrefixes name the interfaces that carry a node's own virtual
// plumbing, not a segment where clients look for a Service IP: container
// veths and bridges, CNI overlays and tunnels, kube-proxy's IPVS dummy,
// node-local DNS. Answering ARP there would at best be noise and at worst
// draw a pod's traffic for the IP to this node. MetalLB keeps a similar
// default list; an L2Advertisement that names an interface answers on it
// whatever its name.
var excludedPrefixes = []string{
	"veth", "docker", "cbr", "cni", "cali", "cilium", "lxc", "flannel", "weave", "vxlan", "geneve", "genev_sys",
	"tunl", "kube-ipvs", "kube-bridge", "nodelocaldns", "dummy", "virbr",
}

// Eligible returns, sorted, the interfaces that answer for a Service whose
// L2Advertisement names none: up, not loopback nor point-to-point, able to
// broadcast (ARP needs it), with an Ethernet address, and not one of the
// node's virtual plumbing interfaces (excludedPrefixes). Whether the link has
// carrier is the responder's business: it waits for it, and announces when it
// comes.
func Eligible(links []Link) []string {
	var out []string
	for _, l := range links {
		switch {
		case l.Flags&net.FlagUp == 0, l.Flags&net.FlagLoopback != 0, l.Flags&net.FlagPointToPoint != 0,
			l.Flags&net.FlagBroadcast == 0, len(l.MAC) != 6:
			continue
		case slices.ContainsFunc(excludedPrefixes, func(p string) bool { return strings.HasPrefix(l.Name, p) }):
			continue
		}
		out = append(out, l.Name)
	}
	slices.Sort(out)
	return out
}

// HostInterfaces lists the interfaces of the calling thread's network
// namespace, the node's for the speaker (hostNetwork).
func HostInterfaces() ([]Link, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Link, len(ifs))
	for i, ifi := range ifs {
		out[i] = Link{Name: ifi.Name, Flags: ifi.Flags, MAC: ifi.HardwareAddr}
	}
	return out, nil
}
