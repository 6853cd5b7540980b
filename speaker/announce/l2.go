package announce

import "net/netip"

// L2Service is what layer 2 mode needs of one Service: which of its IPs are
// announced by ARP/NDP, which nodes may answer for them, and on which of
// this node's interfaces. Every speaker computes it for every Service (the
// answering node is chosen by all of them from the same inputs), so Nodes
// covers the cluster, not just this node.
type L2Service struct {
	// Key is the Service's namespace/name.
	Key string
	// IPs are the Service's ingress IPs whose pool an L2Advertisement
	// selects, sorted.
	IPs []netip.Addr
	// Nodes may answer for the IPs: selected by an L2Advertisement's
	// nodeSelectors (every node when it has none), not excluded from
	// external load balancers, and with externalTrafficPolicy Local only
	// those with a ready endpoint. Sorted; never empty. Services may share
	// one list: read only.
	Nodes []string
	// Interfaces are the interfaces of this node to answer on, from the
	// L2Advertisements that select this node for these IPs, sorted; with
	// AllInterfaces one of them names none, and every interface answers.
	Interfaces    []string
	AllInterfaces bool
}

// L2Node is a Node as layer 2 mode sees it: a possible answering node, and
// where its speaker's heartbeats go.
type L2Node struct {
	Name string
	// Addrs are the Node's InternalIP addresses (ExternalIP when it has none).
	Addrs []netip.Addr
}
