package backend

import (
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Reference is the fabric of the example manifests: ToRs tor1 10.0.0.1 and
// tor2 10.0.0.2 (AS 65000), nodes node1-3 10.0.0.21-23 (AS 65100), a client
// behind tor1; tor1 runs BFD 300 ms x 3 with every node (BGPPeer tor1's
// bfdProfile tor-bfd) and keeps the examples' 90 s hold time, as a ToR that
// relies on BFD would; tor2 runs no BFD and offers hold time `hold` (a third
// of it as keepalive): the examples' BGPPeers ask for 90 s, and a session
// takes the smaller offer, so a short hold keeps hard-failure specs fast.
func Reference(hold time.Duration) Topology {
	t := topology.Default()
	t.BGP.HoldTime = topology.Duration(hold)
	t.BGP.KeepaliveInterval = topology.Duration(hold / 3)
	t.ToRs[0].BGP = &topology.BGPTimers{HoldTime: topology.Duration(examplesHoldTime)}
	t.BFDProfiles = map[string]topology.BFDProfile{
		"tor-bfd": {ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3},
	}
	for i := range t.Nodes {
		t.Nodes[i].BFDProfile = "tor-bfd"
		t.Nodes[i].BFDToRs = []string{"tor1"}
	}
	return Topology{Topology: t}
}

// examplesHoldTime is the hold time the example BGPPeers ask for.
const examplesHoldTime = 90 * time.Second

// BFDEverywhere is Reference with BFD on every ToR for every node, as the
// BGPPeers of scenarios/testdata/faults ask: the production set-up, with
// every ToR offering hold time `hold`.
func BFDEverywhere(hold time.Duration) Topology {
	t := Reference(hold)
	t.ToRs[0].BGP = nil
	for i := range t.Nodes {
		t.Nodes[i].BFDToRs = nil
	}
	return t
}

// ReferenceFRR is Reference with tor1, the BFD ToR with the examples' 90 s
// hold time, run by FRR (zebra, bgpd and bfdd from Debian) instead of the
// fabric's GoBGP router: the same roles and the same control API, so every
// spec runs unchanged and proves the design against a real router next to
// the GoBGP tor2.
func ReferenceFRR(hold time.Duration) Topology {
	t := Reference(hold)
	t.ToRs[0].Flavour = topology.FlavourFRR
	return t
}
