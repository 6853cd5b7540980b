package router

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
)

// This file turns FRR's JSON (as bgpd and bfdd print it, FRR 8.4) into the
// control API's types. Pure: no I/O, the time comes in as an argument.

// frrNexthop is one next-hop of a path in bgpd's JSON.
type frrNexthop struct {
	IP    string `json:"ip"`
	Afi   string `json:"afi"`
	Scope string `json:"scope"` // IPv6: "global" or "link-local"
}

// pathNextHop picks the BGP next-hop of a path: the IPv4 one, or for IPv6 the
// global one (a node announces its segment address, as to the GoBGP ToRs; FRR
// peers add a link-local next-hop that this view leaves out).
func pathNextHop(nhs []frrNexthop) (netip.Addr, bool) {
	var first netip.Addr
	for _, nh := range nhs {
		a, err := netip.ParseAddr(nh.IP)
		if err != nil {
			continue
		}
		if !first.IsValid() {
			first = a
		}
		if a.Is4() || nh.Scope == "global" || (nh.Scope == "" && !a.IsLinkLocalUnicast()) {
			return a, true
		}
	}
	return first, first.IsValid()
}

// parseTableFingerprints reads "show bgp ipv4|ipv6 unicast json" and returns
// every prefix with a fingerprint of its paths as the table shows them (peers,
// next-hops, best and multipath flags, AS path, local-pref, MED, version), so
// only prefixes whose fingerprint changed need their detail read. The table
// leaves out communities, and bgpd does not bump a prefix's version when only
// its multipath set changes: callers also read the detail of prefixes whose
// kernel route changed, and all of it now and then.
func parseTableFingerprints(b []byte) (map[netip.Prefix]string, error) {
	var t struct {
		Routes map[string]json.RawMessage `json:"routes"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("bgp table json: %w", err)
	}
	out := make(map[netip.Prefix]string, len(t.Routes))
	for k, paths := range t.Routes {
		p, err := netip.ParsePrefix(k)
		if err != nil {
			return nil, fmt.Errorf("bgp table json: prefix %q: %w", k, err)
		}
		out[p.Masked()] = string(paths)
	}
	return out, nil
}

// wellKnownCommunities maps FRR's names of well-known communities (both the CLI
// spelling and the JSON one) to the "ASN:value" form GoBGP's view uses.
var wellKnownCommunities = map[string]string{
	"graceful-shutdown": "65535:0", "gShut": "65535:0", "gracefulShutdown": "65535:0",
	"accept-own": "65535:1", "acceptown": "65535:1", "acceptOwn": "65535:1",
	"llgr-stale": "65535:6", "llgrStale": "65535:6",
	"no-llgr": "65535:7", "noLlgr": "65535:7",
	"blackhole": "65535:666",
	"no-export": "65535:65281", "noExport": "65535:65281",
	"no-advertise": "65535:65282", "noAdvertise": "65535:65282",
	"local-AS": "65535:65283", "localAs": "65535:65283",
	"no-peer": "65535:65284", "noPeer": "65535:65284",
}

// parseDetail reads "show bgp ipv4|ipv6 unicast PREFIX json" and returns the
// prefix's ECMP set: its valid paths that are the best path or multipath, with
// their attributes. peerASN gives a neighbor's AS (bgpd's path JSON lacks it);
// zero falls back to the first AS of the path, then to localASN (iBGP). A prefix
// bgpd no longer has gives ok false.
func parseDetail(b []byte, localASN uint32, peerASN func(netip.Addr) uint32) (prefix netip.Prefix, paths []rib.Path, ok bool, err error) {
	var d struct {
		Prefix string `json:"prefix"`
		Paths  []struct {
			ASPath struct {
				Segments []struct {
					List []uint32 `json:"list"`
				} `json:"segments"`
			} `json:"aspath"`
			Valid     bool `json:"valid"`
			Multipath bool `json:"multipath"`
			BestPath  *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Community *struct {
				List []string `json:"list"`
			} `json:"community"`
			LargeCommunity *struct {
				List []string `json:"list"`
			} `json:"largeCommunity"`
			LocPrf   uint32       `json:"locPrf"`
			Metric   uint32       `json:"metric"`
			Nexthops []frrNexthop `json:"nexthops"`
			Peer     struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return netip.Prefix{}, nil, false, fmt.Errorf("bgp prefix json: %w", err)
	}
	if d.Prefix == "" {
		return netip.Prefix{}, nil, false, nil
	}
	prefix, err = netip.ParsePrefix(d.Prefix)
	if err != nil {
		return netip.Prefix{}, nil, false, fmt.Errorf("bgp prefix json: %q: %w", d.Prefix, err)
	}
	prefix = prefix.Masked()
	for _, p := range d.Paths {
		if !p.Valid || !(p.Multipath || p.BestPath != nil && p.BestPath.Overall) {
			continue
		}
		nh, ok := pathNextHop(p.Nexthops)
		if !ok {
			continue
		}
		rp := rib.Path{NextHop: nh, LocalPref: p.LocPrf, MED: p.Metric}
		if a, err := netip.ParseAddr(p.Peer.PeerID); err == nil {
			rp.Peer = a
		}
		for _, s := range p.ASPath.Segments {
			rp.ASPath = append(rp.ASPath, s.List...)
		}
		if p.Community != nil {
			for _, c := range p.Community.List {
				if n, ok := wellKnownCommunities[c]; ok {
					c = n
				}
				rp.Communities = append(rp.Communities, c)
			}
		}
		if p.LargeCommunity != nil {
			rp.LargeCommunities = slices.Clone(p.LargeCommunity.List)
		}
		if rp.Peer.IsValid() && peerASN != nil {
			rp.PeerASN = peerASN(rp.Peer)
		}
		if rp.PeerASN == 0 && len(rp.ASPath) > 0 {
			rp.PeerASN = rp.ASPath[0]
		}
		if rp.PeerASN == 0 {
			rp.PeerASN = localASN
		}
		paths = append(paths, rp)
	}
	return prefix, paths, true, nil
}

// mergePaths is a prefix's ECMP set as the kernel forwards it: one entry per
// next-hop zebra installed, with the attributes of bgpd's paths through that
// next-hop (a bare next-hop until bgpd's detail catches up).
func mergePaths(kernelHops []netip.Addr, bgp []rib.Path) []rib.Path {
	var out []rib.Path
	for _, h := range kernelHops {
		n := len(out)
		for _, p := range bgp {
			if p.NextHop == h {
				out = append(out, p)
			}
		}
		if len(out) == n {
			out = append(out, rib.Path{NextHop: h})
		}
	}
	return out
}

// frrNeighbor is one neighbor of "show bgp neighbors json".
type frrNeighbor struct {
	RemoteAs             uint32 `json:"remoteAs"`
	AdminShutDown        bool   `json:"adminShutDown"`
	BGPState             string `json:"bgpState"`
	PeerGroup            string `json:"peerGroup"`
	PeerSubnetRangeGroup string `json:"peerSubnetRangeGroup"`
	UpMsec               int64  `json:"bgpTimerUpMsec"`
	LastResetMsecs       int64  `json:"lastResetTimerMsecs"`
	HoldMsecs            int64  `json:"bgpTimerHoldTimeMsecs"`
	ConfiguredHoldMsecs  int64  `json:"bgpTimerConfiguredHoldTimeMsecs"`
	ConfiguredKeepMsecs  int64  `json:"bgpTimerConfiguredKeepAliveIntervalMsecs"`
	MessageStats         struct {
		TotalSent uint64 `json:"totalSent"`
		TotalRecv uint64 `json:"totalRecv"`
	} `json:"messageStats"`
	AddressFamilyInfo map[string]struct {
		AcceptedPrefixCounter uint64 `json:"acceptedPrefixCounter"`
	} `json:"addressFamilyInfo"`
}

// parseNeighbors reads "show bgp neighbors json" (keys other than addresses, if
// any, are skipped).
func parseNeighbors(b []byte) (map[netip.Addr]frrNeighbor, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("bgp neighbors json: %w", err)
	}
	out := make(map[netip.Addr]frrNeighbor, len(raw))
	for k, v := range raw {
		a, err := netip.ParseAddr(k)
		if err != nil {
			continue
		}
		var n frrNeighbor
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("bgp neighbor %s json: %w", k, err)
		}
		out[a] = n
	}
	return out, nil
}

// bgpStateName is an FRR FSM state as the GoBGP router names it (lower case);
// bgpd's transient Clearing and Deleted are idle to an observer.
func bgpStateName(s string) string {
	switch s = strings.ToLower(s); s {
	case "clearing", "deleted", "":
		return "idle"
	}
	return s
}

// bgpStates maps each neighbor to its state name.
func bgpStates(ns map[netip.Addr]frrNeighbor) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(ns))
	for a, n := range ns {
		out[a] = bgpStateName(n.BGPState)
	}
	return out
}

// controlNeighbors converts bgpd's neighbors. names are the configured
// neighbors' names, bfd the BFD state by peer; now dates Since from bgpd's
// relative timers.
func controlNeighbors(ns map[netip.Addr]frrNeighbor, names map[netip.Addr]string, bfd map[netip.Addr]string, now time.Time) []control.Neighbor {
	out := make([]control.Neighbor, 0, len(ns))
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	for a, n := range ns {
		c := control.Neighbor{
			Name:                names[a],
			Address:             a,
			ASN:                 n.RemoteAs,
			State:               bgpStateName(n.BGPState),
			AdminDown:           n.AdminShutDown,
			Dynamic:             n.PeerSubnetRangeGroup != "",
			MsgIn:               n.MessageStats.TotalRecv,
			MsgOut:              n.MessageStats.TotalSent,
			BFD:                 bfd[a],
			HoldTime:            ms(n.HoldMsecs),
			ConfiguredHoldTime:  ms(n.ConfiguredHoldMsecs),
			ConfiguredKeepalive: ms(n.ConfiguredKeepMsecs),
		}
		if c.State == "established" {
			c.Since = now.Add(-ms(n.UpMsec))
		} else if n.LastResetMsecs > 0 {
			c.Since = now.Add(-ms(n.LastResetMsecs))
		}
		for _, af := range n.AddressFamilyInfo {
			c.Received += af.AcceptedPrefixCounter
			c.Accepted += af.AcceptedPrefixCounter
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b control.Neighbor) int { return a.Address.Compare(b.Address) })
	return out
}

// frrBFDPeer is one session of "show bfd peers json" (intervals in ms).
type frrBFDPeer struct {
	Multihop               bool   `json:"multihop"`
	Peer                   string `json:"peer"`
	Local                  string `json:"local"`
	Status                 string `json:"status"`
	Diagnostic             string `json:"diagnostic"`
	RemoteDiagnostic       string `json:"remote-diagnostic"`
	ReceiveInterval        uint32 `json:"receive-interval"`
	TransmitInterval       uint32 `json:"transmit-interval"`
	DetectMultiplier       uint32 `json:"detect-multiplier"`
	RemoteReceiveInterval  uint32 `json:"remote-receive-interval"`
	RemoteTransmitInterval uint32 `json:"remote-transmit-interval"`
	RemoteDetectMultiplier uint32 `json:"remote-detect-multiplier"`
	Uptime                 int64  `json:"uptime"`
	Downtime               int64  `json:"downtime"`
}

// frrBFDCounters is one session of "show bfd peers counters json".
type frrBFDCounters struct {
	Peer  string `json:"peer"`
	Local string `json:"local"`
	In    uint64 `json:"control-packet-input"`
	Out   uint64 `json:"control-packet-output"`
}

// parseBFDPeers reads "show bfd peers json" into sessions keyed by peer address,
// single-hop and multi-hop alike: the ToR runs one session per node, of the
// kind its profile says.
func parseBFDPeers(b []byte) (map[netip.Addr]frrBFDPeer, error) {
	var ps []frrBFDPeer
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("bfd peers json: %w", err)
	}
	out := make(map[netip.Addr]frrBFDPeer, len(ps))
	for _, p := range ps {
		a, err := netip.ParseAddr(p.Peer)
		if err != nil {
			continue
		}
		out[a] = p
	}
	return out, nil
}

// parseBFDCounters reads "show bfd peers counters json".
func parseBFDCounters(b []byte) (map[netip.Addr]frrBFDCounters, error) {
	var cs []frrBFDCounters
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("bfd counters json: %w", err)
	}
	out := make(map[netip.Addr]frrBFDCounters, len(cs))
	for _, c := range cs {
		if a, err := netip.ParseAddr(c.Peer); err == nil {
			out[a] = c
		}
	}
	return out, nil
}

// bfdStateName is an FRR BFD status as package bfd names states.
func bfdStateName(s string) string {
	switch s {
	case "up":
		return "Up"
	case "down":
		return "Down"
	case "init":
		return "Init"
	case "shutdown":
		return "AdminDown"
	}
	return s
}

// bfdStates maps each session to its state name.
func bfdStates(ps map[netip.Addr]frrBFDPeer) map[netip.Addr]string {
	out := make(map[netip.Addr]string, len(ps))
	for a, p := range ps {
		out[a] = bfdStateName(p.Status)
	}
	return out
}

// controlBFD converts bfdd's sessions. lastChange holds when this router saw
// each session change state; a session not seen changing is dated from bfdd's
// uptime or downtime (whole seconds) before now.
func controlBFD(ps map[netip.Addr]frrBFDPeer, counters map[netip.Addr]frrBFDCounters, lastChange map[netip.Addr]time.Time, now time.Time) []control.BFDSession {
	out := make([]control.BFDSession, 0, len(ps))
	ms := func(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }
	for a, p := range ps {
		s := control.BFDSession{
			Peer:       a,
			State:      bfdStateName(p.Status),
			LocalDiag:  p.Diagnostic,
			RemoteDiag: p.RemoteDiagnostic,
			TxInterval: ms(p.TransmitInterval),
			LastChange: lastChange[a],
			PacketsIn:  counters[a].In,
			PacketsOut: counters[a].Out,
			Multihop:   p.Multihop,
		}
		s.Local, _ = netip.ParseAddr(p.Local)
		if s.State == "Up" {
			s.RemoteState = "Up"
			// RFC 5880 6.8.4: the remote multiplier times the slower of our
			// required receive interval and its transmit interval.
			s.DetectionTime = time.Duration(p.RemoteDetectMultiplier) * max(ms(p.ReceiveInterval), ms(p.RemoteTransmitInterval))
		}
		if s.LastChange.IsZero() {
			if s.State == "Up" {
				s.LastChange = now.Add(-time.Duration(p.Uptime) * time.Second)
			} else if p.Downtime > 0 {
				s.LastChange = now.Add(-time.Duration(p.Downtime) * time.Second)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b control.BFDSession) int { return a.Peer.Compare(b.Peer) })
	return out
}

// stateChange is one peer's state change between two polls.
type stateChange struct {
	Peer     netip.Addr
	Old, New string
}

// stateChanges compares two polls of per-peer states: a new peer changes from
// "unknown"; a peer that vanished (a deleted or dynamic neighbor) ends in gone,
// unless it was already there. Sorted by peer.
func stateChanges(prev, cur map[netip.Addr]string, gone string) []stateChange {
	var out []stateChange
	for a, s := range cur {
		old, ok := prev[a]
		if !ok {
			old = "unknown"
		}
		if old != s {
			out = append(out, stateChange{Peer: a, Old: old, New: s})
		}
	}
	for a, s := range prev {
		if _, ok := cur[a]; !ok && s != gone {
			out = append(out, stateChange{Peer: a, Old: s, New: gone})
		}
	}
	slices.SortFunc(out, func(a, b stateChange) int { return a.Peer.Compare(b.Peer) })
	return out
}
