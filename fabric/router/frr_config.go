package router

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// This file renders an FRR ToR's configuration from its Config, with the
// semantics of the GoBGP router: passive sessions with the nodes at the ToR's
// timers, IPv4 and IPv6 unicast over them, multipath for eBGP and iBGP, BFD with
// the nodes that ask for it (a BFD Down drops the BGP session), dynamic
// neighbors from the segment, and nothing advertised to the nodes unless
// ExportToNodes. Pure: the same lines configure a running bgpd (AddNeighbor).

const (
	frrRouteMapIn  = "ecmplb-in"
	frrRouteMapOut = "ecmplb-out"
	frrDynamicPG   = "ecmplb-dynamic"
	frrMaxPaths    = 64
)

// frrSecs is a BGP timer in whole seconds, at least lo (GoBGP's rounding).
func frrSecs(d time.Duration, lo uint64) uint64 { return max(uint64(d/time.Second), lo) }

// frrBFDProfileName names a BFD profile after its values, so neighbors added
// at run time with the same parameters share it.
func frrBFDProfileName(p topology.BFDProfile) string {
	n := fmt.Sprintf("ecmplb-%d-%d-%d", p.ReceiveInterval, p.TransmitInterval, p.DetectMultiplier)
	if p.PassiveMode {
		n += "-passive"
	}
	if p.Multihop {
		n += "-multihop"
		if p.MinimumTTL != 0 {
			n += fmt.Sprintf("-ttl%d", p.MinimumTTL)
		}
	}
	return n
}

// frrBFDProfileLines define a profile (inside "bfd").
func frrBFDProfileLines(p topology.BFDProfile) []string {
	l := []string{
		"profile " + frrBFDProfileName(p),
		fmt.Sprintf("receive-interval %d", p.ReceiveInterval),
		fmt.Sprintf("transmit-interval %d", p.TransmitInterval),
		fmt.Sprintf("detect-multiplier %d", p.DetectMultiplier),
	}
	if p.PassiveMode {
		l = append(l, "passive-mode")
	}
	if p.Multihop && p.MinimumTTL != 0 {
		l = append(l, fmt.Sprintf("minimum-ttl %d", p.MinimumTTL))
	}
	return append(l, "exit")
}

// frrBFDPeerLines configure a node's session (inside "bfd"), with its profile.
// bfdd owns the session whatever BGP does, so it exists (and can be shut down)
// before the BGP session is up, as with the GoBGP router.
func frrBFDPeerLines(local netip.Addr, n Neighbor) []string {
	l := frrBFDProfileLines(*n.BFD)
	return append(l,
		frrBFDPeerLine(local, n),
		"profile "+frrBFDProfileName(*n.BFD),
		"exit")
}

// frrBFDPeerLine is the line that names a node's session in bfdd: a multi-hop
// session (RFC 5883) is another session than a single-hop one to the same
// address, so every command that refers to it must say which.
func frrBFDPeerLine(local netip.Addr, n Neighbor) string {
	if n.BFD != nil && n.BFD.Multihop {
		return fmt.Sprintf("peer %s multihop local-address %s", n.Address, local)
	}
	return fmt.Sprintf("peer %s local-address %s", n.Address, local)
}

// frrSessionLines are the session settings of a neighbor or the dynamic peer
// group (inside "router bgp"). The fixed update-source gives bgpd's BFD
// registration the local address from the start: learnt only once the session
// is up, it re-registers the session under a new key, and bfdd deletes the
// configured session and starts it again (the node sees its BFD go down).
//
// Graceful restart is set per session either way: Debian's bgpd is a helper
// by default, and a ToR without gracefulRestart must not be one (as the
// GoBGP ToR is not), or a file could not show what the helper is worth.
func frrSessionLines(c Config, who string) []string {
	t := c.Timers
	gr := "graceful-restart-disable"
	if c.GracefulRestart {
		gr = "graceful-restart-helper"
	}
	return []string{
		fmt.Sprintf("neighbor %s passive", who),
		fmt.Sprintf("neighbor %s update-source %s", who, c.Address),
		fmt.Sprintf("neighbor %s timers %d %d", who, frrSecs(t.KeepaliveInterval.Std(), 1), frrSecs(t.HoldTime.Std(), 3)),
		fmt.Sprintf("neighbor %s timers connect %d", who, frrSecs(t.ConnectRetry.Std(), 1)),
		fmt.Sprintf("neighbor %s %s", who, gr),
	}
}

// frrFamilyLines activate who in both unicast families with the ToR's route
// maps (inside "router bgp").
func frrFamilyLines(who string) []string {
	var l []string
	for _, af := range []string{"ipv4", "ipv6"} {
		l = append(l, "address-family "+af+" unicast",
			fmt.Sprintf("neighbor %s activate", who),
			fmt.Sprintf("neighbor %s route-map %s in", who, frrRouteMapIn),
			fmt.Sprintf("neighbor %s route-map %s out", who, frrRouteMapOut),
			"exit-address-family")
	}
	return l
}

// frrNeighborLines configure one static neighbor (inside "router bgp").
func frrNeighborLines(c Config, n Neighbor) []string {
	l := []string{fmt.Sprintf("neighbor %s remote-as %d", n.Address, n.ASN)}
	if d := frrDescription(n.Name); d != "" {
		l = append(l, fmt.Sprintf("neighbor %s description %s", n.Address, d))
	}
	l = append(l, frrSessionLines(c, n.Address.String())...)
	if n.BFD != nil && n.BFD.Multihop && n.ASN != c.ASN {
		// bgpd registers a multi-hop BFD session for an eBGP neighbor only
		// when it is ebgp-multihop; otherwise it asks bfdd for a single-hop
		// one, which the speaker (multi-hop for ebgpMultiHop) never answers.
		// iBGP neighbors are left as they are (untested here).
		l = append(l, fmt.Sprintf("neighbor %s ebgp-multihop 255", n.Address))
	}
	if n.BFD != nil {
		l = append(l,
			fmt.Sprintf("neighbor %s bfd", n.Address),
			fmt.Sprintf("neighbor %s bfd profile %s", n.Address, frrBFDProfileName(*n.BFD)))
	}
	return append(l, frrFamilyLines(n.Address.String())...)
}

// frrDescription keeps a neighbor name on one line of FRR's configuration.
func frrDescription(s string) string {
	return strings.Join(strings.Fields(s), "_")
}

// frrOneLine keeps free text (a shutdown message) on one configuration line.
func frrOneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// frrZebraConfig is zebra's configuration. Routes go to the kernel as plain
// multipath routes (no nexthop objects), so every change of a prefix's
// next-hop set is a route notification the router can timestamp.
func frrZebraConfig(c Config) string {
	return fmt.Sprintf("hostname %s\nlog timestamp precision 6\nno zebra nexthop kernel enable\n!\n", c.Name)
}

// frrBFDConfig is bfdd's configuration: one session per node that runs BFD
// with this ToR.
func frrBFDConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nlog timestamp precision 6\ndebug bfd peer\n!\nbfd\n", c.Name)
	for _, n := range c.Neighbors {
		if n.BFD == nil {
			continue
		}
		writeIndented(&b, frrBFDPeerLines(c.Address, n))
	}
	b.WriteString("exit\n!\n")
	return b.String()
}

// frrBGPConfig is bgpd's configuration.
func frrBGPConfig(c Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nlog timestamp precision 6\n!\n", c.Name)
	// Accept everything from the nodes; the IPv6 next-hop installed is the one
	// the node announced (its segment address), not the link-local one.
	fmt.Fprintf(&b, "route-map %s permit 10\n set ipv6 next-hop prefer-global\nexit\n", frrRouteMapIn)
	out := "deny"
	if c.ExportToNodes {
		out = "permit"
	}
	fmt.Fprintf(&b, "route-map %s %s 10\nexit\n!\n", frrRouteMapOut, out)
	t := c.Timers
	l := []string{
		"bgp router-id " + c.Address.String(),
		"no bgp ebgp-requires-policy",
		"no bgp default ipv4-unicast",
		"no bgp network import-check",
		"bgp log-neighbor-changes",
		// Nodes may sit in different ASes: their paths are still equal.
		"bgp bestpath as-path multipath-relax",
		fmt.Sprintf("timers bgp %d %d", frrSecs(t.KeepaliveInterval.Std(), 1), frrSecs(t.HoldTime.Std(), 3)),
	}
	if c.GracefulRestart {
		// The time the GoBGP ToR offers too; the sessions' helper lines follow.
		l = append(l, fmt.Sprintf("bgp graceful-restart restart-time %d", gracefulRestartTime))
	}
	for _, n := range c.Neighbors {
		l = append(l, frrNeighborLines(c, n)...)
	}
	if c.DynamicRange.IsValid() {
		l = append(l, "neighbor "+frrDynamicPG+" peer-group",
			fmt.Sprintf("neighbor %s remote-as %d", frrDynamicPG, c.DynamicASN))
		l = append(l, frrSessionLines(c, frrDynamicPG)...)
		l = append(l, fmt.Sprintf("bgp listen range %s peer-group %s", c.DynamicRange, frrDynamicPG))
		l = append(l, frrFamilyLines(frrDynamicPG)...)
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		l = append(l, "address-family "+af+" unicast",
			fmt.Sprintf("maximum-paths %d", frrMaxPaths),
			fmt.Sprintf("maximum-paths ibgp %d", frrMaxPaths),
			"exit-address-family")
	}
	fmt.Fprintf(&b, "router bgp %d\n", c.ASN)
	writeIndented(&b, l)
	b.WriteString("exit\n!\n")
	return b.String()
}

// writeIndented writes configuration lines one level in (FRR does not need
// the indentation; it keeps the files readable).
func writeIndented(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(" " + l + "\n")
	}
}
