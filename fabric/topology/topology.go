// Package topology describes a virtual fabric: the ToR routers, the nodes that peer with
// them over one L2 segment, the client namespaces that send traffic into the fabric, and
// the BGP/BFD parameters of the sessions. It loads the description from YAML and provides
// the reference topology of the project.
package topology

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"sigs.k8s.io/yaml"
)

// Topology is a whole fabric: routers and nodes on one L2 segment.
type Topology struct {
	// Name is a human label, shown by the CLI.
	Name string `json:"name,omitempty"`
	// Segment is the shared L2 subnet of ToRs and nodes, e.g. 10.0.0.0/24. BGP runs
	// over it.
	Segment netip.Prefix `json:"segment"`
	// Segment6 optionally adds an IPv6 subnet to the segment (dual stack): every ToR
	// and node then has an Address6 in it, IPv6 routes learnt over the IPv4 sessions
	// (next-hop = the node's Address6) reach the ToRs' kernel FIBs.
	Segment6 netip.Prefix `json:"segment6,omitzero"`
	// ToRs are the routers (GoBGP with multipath, or FRR; one network namespace each).
	ToRs []ToR `json:"tors"`
	// Nodes are the hosts that peer with every ToR (the speakers run there).
	Nodes []Node `json:"nodes"`
	// Clients are namespaces that hang off one ToR on their own point-to-point link and
	// send flows into the fabric.
	Clients []Client `json:"clients,omitempty"`
	// BGP holds the session timers used on the ToR side.
	BGP BGPTimers `json:"bgp,omitempty"`
	// BFDProfiles are named BFD parameter sets; nodes refer to them by name.
	BFDProfiles map[string]BFDProfile `json:"bfdProfiles,omitempty"`
	// DynamicNeighbors, when true, lets any address of the segment peer with the ToRs
	// (GoBGP peer group with a prefix range) in addition to the listed nodes.
	DynamicNeighbors bool `json:"dynamicNeighbors,omitempty"`
	// DynamicNeighborASN is the peer AS accepted from dynamic neighbors (default 65100).
	DynamicNeighborASN uint32 `json:"dynamicNeighborASN,omitempty"`
	// ExportToNodes makes the ToRs advertise their tables to the nodes; by default they
	// advertise nothing (the nodes only announce).
	ExportToNodes bool `json:"exportToNodes,omitempty"`
	// L2 optionally adds a second shared segment for layer2 mode (see L2).
	L2 *L2 `json:"l2,omitempty"`
}

// ToR is one top-of-rack router.
type ToR struct {
	// Name is unique among routers, nodes and clients (e.g. "tor1").
	Name string `json:"name"`
	// Address is the router's address on the segment; also its router ID.
	Address netip.Addr `json:"address"`
	// Address6 is the router's IPv6 address on the segment (with Segment6 only).
	Address6 netip.Addr `json:"address6,omitzero"`
	// ASN is the router's AS number.
	ASN uint32 `json:"asn"`
	// GRPCPort is where GoBGP's gRPC API listens on 127.0.0.1 inside the router's
	// namespace (default 50051), for the standard gobgp CLI.
	GRPCPort int `json:"grpcPort,omitempty"`
	// BGP overrides the topology's session timers for this ToR alone, so one ToR can
	// keep a long hold time (and rely on BFD) next to one with a short hold time.
	// Omitted fields inherit Topology.BGP, except that an omitted keepaliveInterval
	// is a third of an overridden holdTime. Nil: the topology's timers.
	BGP *BGPTimers `json:"bgp,omitempty"`
	// Flavour is the router implementation: "gobgp" (the fabric's embedded GoBGP,
	// the default when empty) or "frr" (Debian's FRR: zebra, bgpd and bfdd in the
	// ToR's namespace, configured from this topology). Both serve the same control
	// API, so a scenario runs unchanged against either.
	Flavour string `json:"flavour,omitempty"`
	// GracefulRestart makes the router a graceful-restart helper (RFC 4724,
	// restart time 120 s) towards the nodes: a node's session that ends
	// without a NOTIFICATION (a speaker restarting) leaves its routes in the
	// RIB and FIB, stale, until the node is back and sends End-of-RIB.
	GracefulRestart bool `json:"gracefulRestart,omitempty"`
}

// ToR flavours (ToR.Flavour).
const (
	FlavourGoBGP = "gobgp"
	FlavourFRR   = "frr"
)

// RouterFlavour is the ToR's flavour with the default filled in.
func (r ToR) RouterFlavour() string {
	if r.Flavour == "" {
		return FlavourGoBGP
	}
	return r.Flavour
}

// Node is a host that peers with the ToRs.
type Node struct {
	// Name is unique among routers, nodes and clients (e.g. "node1").
	Name string `json:"name"`
	// Address is the node's address on the segment.
	Address netip.Addr `json:"address"`
	// Address6 is the node's IPv6 address on the segment (with Segment6 only): the
	// next-hop of the IPv6 routes it announces.
	Address6 netip.Addr `json:"address6,omitzero"`
	// ASN is the node's AS number; the ToRs expect it as peer AS.
	ASN uint32 `json:"asn"`
	// BFDProfile names an entry of Topology.BFDProfiles; empty means no BFD towards
	// this node.
	BFDProfile string `json:"bfdProfile,omitempty"`
	// BFDToRs limits BFD to these ToRs (empty: every ToR), for designs where
	// only some BGP peers run BFD, like the examples' tor1.
	BFDToRs []string `json:"bfdToRs,omitempty"`
	// L2Address is the node's address on the L2 segment when the default
	// (its segment address's host part in the L2 subnet, Topology.L2Addr)
	// does not fit: kind places nodes at Docker's addresses and keeps the
	// L2 address a node has in the lab.
	L2Address netip.Addr `json:"l2Address,omitzero"`
}

// BFDWith reports whether the node runs BFD with the named ToR.
func (n Node) BFDWith(tor string) bool {
	return n.BFDProfile != "" && (len(n.BFDToRs) == 0 || slices.Contains(n.BFDToRs, tor))
}

// Client is a namespace attached to one ToR by a point-to-point link.
type Client struct {
	// Name is unique among routers, nodes and clients (e.g. "client").
	Name string `json:"name"`
	// ToR names the router the client hangs off.
	ToR string `json:"tor"`
	// Link is the point-to-point prefix (e.g. 172.31.0.0/30): the ToR takes the first
	// host address, the client the second.
	Link netip.Prefix `json:"link"`
	// Link6 optionally adds an IPv6 point-to-point prefix (e.g. fd00:31::/126), same
	// convention: ToR first host address, client second.
	Link6 netip.Prefix `json:"link6,omitzero"`
}

// BGPTimers are the ToR-side session timers. Zero fields take the defaults of Default.
type BGPTimers struct {
	HoldTime               Duration `json:"holdTime,omitempty"`
	KeepaliveInterval      Duration `json:"keepaliveInterval,omitempty"`
	ConnectRetry           Duration `json:"connectRetry,omitempty"`
	IdleHoldTimeAfterReset Duration `json:"idleHoldTimeAfterReset,omitempty"`
}

// inherit fills the zero fields of o from base; with o's own hold time, an unset
// keepalive is a third of it (base's keepalive might exceed it).
func (o BGPTimers) inherit(base BGPTimers) BGPTimers {
	if o.KeepaliveInterval == 0 && o.HoldTime != 0 {
		o.KeepaliveInterval = o.HoldTime / 3
	}
	for _, f := range []struct{ field, from *Duration }{
		{&o.HoldTime, &base.HoldTime}, {&o.KeepaliveInterval, &base.KeepaliveInterval},
		{&o.ConnectRetry, &base.ConnectRetry}, {&o.IdleHoldTimeAfterReset, &base.IdleHoldTimeAfterReset},
	} {
		if *f.field == 0 {
			*f.field = *f.from
		}
	}
	return o
}

// defaultTimers are the topology's timers where its bgp block leaves them out.
var defaultTimers = BGPTimers{
	HoldTime: Duration(9 * time.Second), KeepaliveInterval: Duration(3 * time.Second),
	ConnectRetry: Duration(time.Second), IdleHoldTimeAfterReset: Duration(time.Second),
}

// validate checks the timers; field prefixes the field names in the errors
// ("bgp" or `tor "tor1": bgp`).
func (o BGPTimers) validate(field string) []error {
	var errs []error
	if o.HoldTime.Std() < 3*time.Second || o.HoldTime.Std()%time.Second != 0 {
		errs = append(errs, fmt.Errorf("%s.holdTime: %v must be whole seconds, at least 3s", field, o.HoldTime.Std()))
	}
	if o.KeepaliveInterval.Std() < time.Second || o.KeepaliveInterval > o.HoldTime {
		errs = append(errs, fmt.Errorf("%s.keepaliveInterval: %v must be between 1s and the hold time", field, o.KeepaliveInterval.Std()))
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"connectRetry", o.ConnectRetry}, {"idleHoldTimeAfterReset", o.IdleHoldTimeAfterReset}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s.%s: %v must not be negative", field, f.name, f.d.Std()))
		}
	}
	return errs
}

// Timers returns the session timers ToR tor runs: its own bgp override on top of
// the topology's, or the topology's alone (also for an unknown name).
func (t Topology) Timers(tor string) BGPTimers {
	if r, ok := t.ToR(tor); ok && r.BGP != nil {
		return r.BGP.inherit(t.BGP)
	}
	return t.BGP
}

// BFDProfile mirrors MetalLB's BFDProfile fields (intervals in milliseconds).
type BFDProfile struct {
	ReceiveInterval  uint32 `json:"receiveInterval,omitempty"`
	TransmitInterval uint32 `json:"transmitInterval,omitempty"`
	DetectMultiplier uint32 `json:"detectMultiplier,omitempty"`
	PassiveMode      bool   `json:"passiveMode,omitempty"`
	// Multihop makes the ToR run the session multi-hop (RFC 5883, UDP 4784),
	// as a speaker does for a BGPPeer with ebgpMultiHop, and treat the node's
	// BGP session as eBGP multi-hop. Without it a ToR runs single-hop BFD
	// (RFC 5881, UDP 3784, TTL 255 only) and cannot meet such a speaker.
	Multihop bool `json:"multihop,omitempty"`
	// MinimumTTL is the lowest TTL a multi-hop session accepts, 1-254 (0: the
	// bfd package's and FRR's default, 254); multi-hop only.
	MinimumTTL uint32 `json:"minimumTtl,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("3s") in YAML/JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Default returns the reference topology: ToRs 10.0.0.1 and 10.0.0.2 in AS 65000, nodes
// 10.0.0.21-23 in AS 65100 on 10.0.0.0/24 (and fd00:10::1, ::2, ::21-23 on
// fd00:10::/64 for IPv6 routes), one client on 172.31.0.0/30 and fd00:31::/126 behind
// tor1, hold time 9 s, keepalive 3 s, connect-retry 1 s, idle-hold after reset 1 s, and
// a "default" BFD profile of 300 ms x 3 that no node uses unless told to.
func Default() Topology {
	a := netip.MustParseAddr
	return Topology{
		Name:     "reference",
		Segment:  netip.MustParsePrefix("10.0.0.0/24"),
		Segment6: netip.MustParsePrefix("fd00:10::/64"),
		ToRs: []ToR{
			{Name: "tor1", Address: a("10.0.0.1"), Address6: a("fd00:10::1"), ASN: 65000},
			{Name: "tor2", Address: a("10.0.0.2"), Address6: a("fd00:10::2"), ASN: 65000},
		},
		Nodes: []Node{
			{Name: "node1", Address: a("10.0.0.21"), Address6: a("fd00:10::21"), ASN: 65100},
			{Name: "node2", Address: a("10.0.0.22"), Address6: a("fd00:10::22"), ASN: 65100},
			{Name: "node3", Address: a("10.0.0.23"), Address6: a("fd00:10::23"), ASN: 65100},
		},
		Clients: []Client{
			{Name: "client", ToR: "tor1", Link: netip.MustParsePrefix("172.31.0.0/30"), Link6: netip.MustParsePrefix("fd00:31::/126")},
		},
		BFDProfiles: map[string]BFDProfile{
			"default": {ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3},
		},
	}
}

// Load reads a topology from a YAML (or JSON) file, fills defaults and validates it.
func Load(path string) (Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Topology{}, fmt.Errorf("topology: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return Topology{}, fmt.Errorf("topology %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes YAML (or JSON), fills defaults and validates.
func Parse(b []byte) (Topology, error) {
	var t Topology
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return Topology{}, err
	}
	t.SetDefaults()
	if err := t.Validate(); err != nil {
		return Topology{}, err
	}
	return t, nil
}

// Marshal renders the topology as YAML.
func (t Topology) Marshal() ([]byte, error) { return yaml.Marshal(t) }

// SetDefaults fills zero timers (a ToR's bgp override from the topology's), gRPC
// ports and the dynamic-neighbor AS.
func (t *Topology) SetDefaults() {
	t.BGP = t.BGP.inherit(defaultTimers)
	for i := range t.ToRs {
		if t.ToRs[i].GRPCPort == 0 {
			t.ToRs[i].GRPCPort = 50051
		}
		if o := t.ToRs[i].BGP; o != nil {
			filled := o.inherit(t.BGP)
			t.ToRs[i].BGP = &filled
		}
	}
	if t.DynamicNeighborASN == 0 {
		t.DynamicNeighborASN = 65100
	}
	if t.L2 != nil {
		t.L2.setDefaults()
	}
	for name, p := range t.BFDProfiles {
		if p.ReceiveInterval == 0 {
			p.ReceiveInterval = 300
		}
		if p.TransmitInterval == 0 {
			p.TransmitInterval = 300
		}
		if p.DetectMultiplier == 0 {
			p.DetectMultiplier = 3
		}
		t.BFDProfiles[name] = p
	}
}

// Validate reports the first problem found, naming the element and field.
func (t Topology) Validate() error {
	var errs []error
	if !t.Segment.IsValid() || !t.Segment.Addr().Is4() {
		errs = append(errs, fmt.Errorf("segment: %q is not an IPv4 prefix", t.Segment))
	}
	if len(t.ToRs) == 0 {
		errs = append(errs, errors.New("tors: at least one router is needed"))
	}
	names := map[string]bool{}
	addrs := map[netip.Addr]string{}
	checkName := func(kind string, i int, name string) {
		if name == "" || len(name) > 12 {
			errs = append(errs, fmt.Errorf("%s[%d].name: %q must be 1-12 characters", kind, i, name))
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				errs = append(errs, fmt.Errorf("%s[%d].name: %q may hold only a-z, 0-9 and -", kind, i, name))
				break
			}
		}
		if names[name] {
			errs = append(errs, fmt.Errorf("%s[%d].name: %q is used twice", kind, i, name))
		}
		names[name] = true
	}
	dual := t.Segment6.IsValid()
	if dual && (!t.Segment6.Addr().Is6() || t.Segment6.Addr().Is4In6()) {
		errs = append(errs, fmt.Errorf("segment6: %q is not an IPv6 prefix", t.Segment6))
		dual = false
	}
	checkAddr6 := func(kind, name string, a netip.Addr) {
		switch {
		case !dual && a.IsValid():
			errs = append(errs, fmt.Errorf("%s %q: address6 %v needs segment6", kind, name, a))
		case dual && !a.IsValid():
			errs = append(errs, fmt.Errorf("%s %q: address6 is missing (segment6 %v is set)", kind, name, t.Segment6))
		case dual && !t.Segment6.Contains(a):
			errs = append(errs, fmt.Errorf("%s %q: address6 %v is not in segment6 %v", kind, name, a, t.Segment6))
		case dual:
			if other, ok := addrs[a]; ok {
				errs = append(errs, fmt.Errorf("%s %q: address6 %v is already used by %q", kind, name, a, other))
			}
			addrs[a] = name
		}
	}
	checkAddr := func(kind string, i int, name string, a netip.Addr) {
		if !a.IsValid() || !t.Segment.Contains(a) {
			errs = append(errs, fmt.Errorf("%s %q: address %v is not in segment %v", kind, name, a, t.Segment))
			return
		}
		if other, ok := addrs[a]; ok {
			errs = append(errs, fmt.Errorf("%s %q: address %v is already used by %q", kind, name, a, other))
		}
		addrs[a] = name
	}
	for i, r := range t.ToRs {
		checkName("tors", i, r.Name)
		checkAddr("tor", i, r.Name, r.Address)
		checkAddr6("tor", r.Name, r.Address6)
		if r.ASN == 0 {
			errs = append(errs, fmt.Errorf("tor %q: asn must be set", r.Name))
		}
		if f := r.RouterFlavour(); f != FlavourGoBGP && f != FlavourFRR {
			errs = append(errs, fmt.Errorf("tor %q: flavour: %q must be %q or %q", r.Name, r.Flavour, FlavourGoBGP, FlavourFRR))
		}
	}
	for i, n := range t.Nodes {
		checkName("nodes", i, n.Name)
		checkAddr("node", i, n.Name, n.Address)
		checkAddr6("node", n.Name, n.Address6)
		if n.ASN == 0 {
			errs = append(errs, fmt.Errorf("node %q: asn must be set", n.Name))
		}
		if n.BFDProfile != "" {
			if _, ok := t.BFDProfiles[n.BFDProfile]; !ok {
				errs = append(errs, fmt.Errorf("node %q: bfdProfile %q is not defined in bfdProfiles", n.Name, n.BFDProfile))
			}
		}
		for _, tor := range n.BFDToRs {
			if _, ok := t.ToR(tor); !ok {
				errs = append(errs, fmt.Errorf("node %q: bfdToRs: %q is not a ToR of the topology", n.Name, tor))
			}
		}
		if n.L2Address.IsValid() && t.L2 == nil {
			errs = append(errs, fmt.Errorf("node %q: l2Address %v without an l2 segment", n.Name, n.L2Address))
		}
	}
	for i, c := range t.Clients {
		checkName("clients", i, c.Name)
		if _, ok := t.ToR(c.ToR); !ok {
			errs = append(errs, fmt.Errorf("client %q: tor %q is not defined", c.Name, c.ToR))
		}
		if !c.Link.IsValid() || !c.Link.Addr().Is4() || c.Link.Bits() > 30 {
			errs = append(errs, fmt.Errorf("client %q: link %q must be an IPv4 prefix of /30 or shorter", c.Name, c.Link))
		} else if c.Link.Overlaps(t.Segment) {
			errs = append(errs, fmt.Errorf("client %q: link %v overlaps segment %v", c.Name, c.Link, t.Segment))
		}
		if c.Link6.IsValid() {
			switch {
			case !c.Link6.Addr().Is6() || c.Link6.Addr().Is4In6() || c.Link6.Bits() > 126:
				errs = append(errs, fmt.Errorf("client %q: link6 %q must be an IPv6 prefix of /126 or shorter", c.Name, c.Link6))
			case !dual:
				errs = append(errs, fmt.Errorf("client %q: link6 needs segment6", c.Name))
			case c.Link6.Overlaps(t.Segment6):
				errs = append(errs, fmt.Errorf("client %q: link6 %v overlaps segment6 %v", c.Name, c.Link6, t.Segment6))
			}
		}
	}
	for name, p := range t.BFDProfiles {
		if p.ReceiveInterval < 10 || p.ReceiveInterval > 60000 {
			errs = append(errs, fmt.Errorf("bfdProfiles[%s].receiveInterval: %d is outside 10-60000", name, p.ReceiveInterval))
		}
		if p.TransmitInterval < 10 || p.TransmitInterval > 60000 {
			errs = append(errs, fmt.Errorf("bfdProfiles[%s].transmitInterval: %d is outside 10-60000", name, p.TransmitInterval))
		}
		if p.DetectMultiplier < 2 || p.DetectMultiplier > 255 {
			errs = append(errs, fmt.Errorf("bfdProfiles[%s].detectMultiplier: %d is outside 2-255", name, p.DetectMultiplier))
		}
		switch {
		case p.MinimumTTL != 0 && !p.Multihop:
			errs = append(errs, fmt.Errorf("bfdProfiles[%s].minimumTtl: %d needs multihop: true (a single-hop session accepts TTL 255 only)", name, p.MinimumTTL))
		case p.MinimumTTL > 254:
			errs = append(errs, fmt.Errorf("bfdProfiles[%s].minimumTtl: %d is outside 1-254", name, p.MinimumTTL))
		}
	}
	if t.L2 != nil {
		errs = append(errs, t.L2.validate(t, names)...)
	}
	errs = append(errs, t.BGP.validate("bgp")...)
	for _, r := range t.ToRs {
		if r.BGP != nil {
			errs = append(errs, t.Timers(r.Name).validate(fmt.Sprintf("tor %q: bgp", r.Name))...)
		}
	}
	return errors.Join(errs...)
}

// ToR returns the router with the given name.
func (t Topology) ToR(name string) (ToR, bool) {
	for _, r := range t.ToRs {
		if r.Name == name {
			return r, true
		}
	}
	return ToR{}, false
}

// Node returns the node with the given name.
func (t Topology) Node(name string) (Node, bool) {
	for _, n := range t.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Client returns the client with the given name.
func (t Topology) Client(name string) (Client, bool) {
	for _, c := range t.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return Client{}, false
}

// ToRAddr is the ToR's address on a client link (first host address).
func (c Client) ToRAddr() netip.Addr { return c.Link.Masked().Addr().Next() }

// Addr is the client's address on its link (second host address).
func (c Client) Addr() netip.Addr { return c.Link.Masked().Addr().Next().Next() }

// ToRAddr6 is the ToR's address on the client's IPv6 link (invalid without Link6).
func (c Client) ToRAddr6() netip.Addr {
	if !c.Link6.IsValid() {
		return netip.Addr{}
	}
	return c.Link6.Masked().Addr().Next()
}

// Addr6 is the client's address on its IPv6 link (invalid without Link6).
func (c Client) Addr6() netip.Addr {
	if !c.Link6.IsValid() {
		return netip.Addr{}
	}
	return c.Link6.Masked().Addr().Next().Next()
}
