package kindconfig

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
)

// Pod networking without a CNI DaemonSet (no image for one can be pulled):
// every node gets a bridge + host-local CNI configuration for its own pod
// CIDR (Debian's containernetworking-plugins, in the node image), and every
// node routes the other nodes' pod CIDRs to those nodes' addresses on the
// shared Docker network. All of it stays on that network.

// CNIConfigPath is where Create writes a node's CNI configuration.
const CNIConfigPath = "/etc/cni/net.d/10-ecmplb.conflist"

// PodBridge is the Linux bridge the CNI configuration attaches pods to.
const PodBridge = "elb-pods0"

// NodeNet is what pod networking needs to know about one node.
type NodeNet struct {
	// Name is the Kubernetes node name (and the kind node container's name).
	Name string
	// IP is the node's address on the cluster's Docker network.
	IP netip.Addr
	// PodCIDR is the node's pod CIDR (spec.podCIDR).
	PodCIDR netip.Prefix
}

// Route sends Dst via the node at Via.
type Route struct {
	Dst netip.Prefix
	Via netip.Addr
}

// CNIConfig is the CNI network configuration list for a node whose pods
// take addresses from podCIDR: a bridge (the node is the pods' gateway)
// with host-local IPAM, and portmap for hostPort.
func CNIConfig(podCIDR netip.Prefix) ([]byte, error) {
	if !podCIDR.IsValid() || !podCIDR.Addr().Is4() || podCIDR.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s: want an IPv4 prefix of /30 or shorter", podCIDR)
	}
	podCIDR = podCIDR.Masked()
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "ecmplb-pods",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      PodBridge,
				"isGateway":   true,
				"ipMasq":      false,
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR.String()}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
			},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// PodRoutes returns, for each node name, the routes to every other node's
// pod CIDR, sorted by destination. Nodes must have distinct names and
// addresses and non-overlapping IPv4 pod CIDRs.
func PodRoutes(nodes []NodeNet) (map[string][]Route, error) {
	names := map[string]bool{}
	ips := map[netip.Addr]string{}
	for i, n := range nodes {
		switch {
		case n.Name == "":
			return nil, fmt.Errorf("node %d: no name", i)
		case names[n.Name]:
			return nil, fmt.Errorf("node %s: listed twice", n.Name)
		case !n.IP.Is4():
			return nil, fmt.Errorf("node %s: address %v is not IPv4", n.Name, n.IP)
		case ips[n.IP] != "":
			return nil, fmt.Errorf("node %s: address %s is also node %s's", n.Name, n.IP, ips[n.IP])
		case !n.PodCIDR.IsValid() || !n.PodCIDR.Addr().Is4():
			return nil, fmt.Errorf("node %s: pod CIDR %v is not IPv4", n.Name, n.PodCIDR)
		}
		names[n.Name] = true
		ips[n.IP] = n.Name
		for _, m := range nodes[:i] {
			if m.PodCIDR.Overlaps(n.PodCIDR) {
				return nil, fmt.Errorf("node %s: pod CIDR %s overlaps node %s's %s", n.Name, n.PodCIDR, m.Name, m.PodCIDR)
			}
		}
	}
	out := make(map[string][]Route, len(nodes))
	for _, n := range nodes {
		routes := []Route{}
		for _, m := range nodes {
			if m.Name != n.Name {
				routes = append(routes, Route{Dst: m.PodCIDR.Masked(), Via: m.IP})
			}
		}
		sort.Slice(routes, func(i, j int) bool { return routes[i].Dst.Addr().Less(routes[j].Dst.Addr()) })
		out[n.Name] = routes
	}
	return out, nil
}
