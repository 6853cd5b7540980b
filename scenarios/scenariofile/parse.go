package scenariofile

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, filepath.Dir(abs), b)
}

// Parse checks a scenario read from file (named in errors); relative
// manifest paths are taken from dir.
func Parse(file, dir string, data []byte) (*Scenario, error) {
	p := &parser{file: file, dir: dir}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario", file)
	}
	s := p.scenario(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return s, nil
}

// parser collects every problem of a file, each with its line and field.
type parser struct {
	file, dir string
	errs      []error
	topo      backend.Topology
	// inRepeat: the steps being read are inside a repeat (no nesting).
	inRepeat bool
	// refs are the names l2 expectations recorded with as, by line.
	refs map[string]int
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s: %s", p.file, n.Line, field, fmt.Sprintf(format, args...)))
}

// fields returns a mapping's values by key, reporting keys not in allowed.
func (p *parser) fields(n *yaml.Node, field string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping with %s", strings.Join(allowed, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			p.errf(k, join(field, k.Value), "unknown field (want one of %s)", strings.Join(allowed, ", "))
			continue
		}
		out[k.Value] = v
	}
	return out
}

func join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

func (p *parser) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode {
		p.errf(n, field, "want a string")
		return ""
	}
	return n.Value
}

func (p *parser) strs(n *yaml.Node, field string) []string { return p.list(n, field, "strings", p.str) }

// list reads a sequence of scalars, each checked by item.
func (p *parser) list(n *yaml.Node, field, what string, item func(*yaml.Node, string) string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, field, "want a list of %s", what)
		return nil
	}
	out := []string{}
	for i, c := range n.Content {
		out = append(out, item(c, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	d, err := time.ParseDuration(p.str(n, field))
	if err != nil || d < 0 {
		p.errf(n, field, "%q is not a duration (write e.g. 900ms, 9s, 1m)", n.Value)
		return 0
	}
	return d
}

func (p *parser) integer(n *yaml.Node, field string, lo, hi int) int {
	v, err := strconv.Atoi(p.str(n, field))
	if err != nil || v < lo || v > hi {
		p.errf(n, field, "%q is not a whole number in %d-%d", n.Value, lo, hi)
		return lo
	}
	return v
}

func (p *parser) addr(n *yaml.Node, field string) netip.Addr {
	a, err := netip.ParseAddr(p.str(n, field))
	if err != nil || !a.Is4() {
		p.errf(n, field, "%q is not an IPv4 address", n.Value)
		return netip.Addr{}
	}
	return a
}

func (p *parser) scenario(n *yaml.Node) *Scenario {
	s := &Scenario{File: p.file}
	f := p.fields(n, "", "name", "description", "labels", "skip", "topology", "manifests", "steps")
	if v := f["name"]; v != nil {
		s.Name = p.str(v, "name")
	}
	if s.Name == "" {
		p.errf(n, "name", "every scenario needs a name")
	}
	if v := f["description"]; v != nil {
		s.Description = p.str(v, "description")
	}
	if v := f["labels"]; v != nil {
		s.Labels = p.strs(v, "labels")
		for i, l := range s.Labels {
			if strings.ContainsAny(l, "&|!,()/:") {
				p.errf(v.Content[i], fmt.Sprintf("labels[%d]", i), "%q may not contain any of &|!,()/:", l)
			}
		}
	}
	if v := f["skip"]; v != nil {
		s.Skip = p.skip(v, "skip")
	}
	p.topo = p.topology(f["topology"], n)
	s.Topology = p.topo
	if v := f["manifests"]; v != nil {
		s.Manifests = p.manifests(v, "manifests")
	}
	v := f["steps"]
	if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		p.errf(n, "steps", "a scenario needs a list of steps")
		return s
	}
	for i, st := range v.Content {
		s.Steps = append(s.Steps, p.step(st, fmt.Sprintf("steps[%d]", i)))
	}
	p.streams(s.Steps, v.Content, "steps")
	return s
}

// topology builds the fabric: the reference fabric's segment, AS numbers
// and client, with the ToRs and nodes the file lists (the reference ones
// when it lists none). IPv4 only, unless dualStack: true adds the reference
// fabric's IPv6 segment (see dualStack).
func (p *parser) topology(n, parent *yaml.Node) backend.Topology {
	t := topology.Default()
	ref := topology.Default() // t's slices are edited below
	t.Segment6 = netip.Prefix{}
	for i := range t.ToRs {
		t.ToRs[i].Address6 = netip.Addr{}
	}
	for i := range t.Nodes {
		t.Nodes[i].Address6 = netip.Addr{}
	}
	for i := range t.Clients {
		t.Clients[i].Link6 = netip.Prefix{}
	}
	t.BFDProfiles = map[string]topology.BFDProfile{}
	t.BGP.HoldTime = topology.Duration(9 * time.Second)
	if n == nil {
		t.SetDefaults()
		return backend.Topology{Topology: t}
	}
	f := p.fields(n, "topology", "holdTime", "tors", "nodes", "dualStack", "l2")
	if v := f["holdTime"]; v != nil {
		t.BGP.HoldTime = topology.Duration(p.holdTime(v, "topology.holdTime"))
	}
	t.BGP.KeepaliveInterval = t.BGP.HoldTime / 3
	var bfd *topology.BFDProfile
	var bfdToRs []string
	if v := f["tors"]; v != nil {
		t.ToRs = nil
		if v.Kind != yaml.SequenceNode {
			p.errf(v, "topology.tors", "want a list of ToRs")
		}
		for i, r := range v.Content {
			field := fmt.Sprintf("topology.tors[%d]", i)
			rf := p.fields(r, field, "name", "address", "asn", "bfd", "holdTime", "flavour", "gracefulRestart")
			tor := topology.ToR{ASN: 65000}
			if x := rf["name"]; x != nil {
				tor.Name = p.str(x, field+".name")
			}
			if x := rf["address"]; x != nil {
				tor.Address = p.inSegment(x, field+".address", t.Segment)
			}
			if x := rf["asn"]; x != nil {
				tor.ASN = p.asn(x, field+".asn")
			}
			if x := rf["flavour"]; x != nil {
				tor.Flavour = p.str(x, field+".flavour")
				if tor.Flavour != topology.FlavourGoBGP && tor.Flavour != topology.FlavourFRR {
					p.errf(x, field+".flavour", "%q is neither %s (the fabric's GoBGP router) nor %s (Debian's FRR)", tor.Flavour, topology.FlavourGoBGP, topology.FlavourFRR)
				}
			}
			if x := rf["gracefulRestart"]; x != nil {
				tor.GracefulRestart = p.boolean(x, field+".gracefulRestart")
			}
			if x := rf["holdTime"]; x != nil {
				d := p.holdTime(x, field+".holdTime")
				tor.BGP = &topology.BGPTimers{HoldTime: topology.Duration(d), KeepaliveInterval: topology.Duration(d / 3)}
			}
			if x := rf["bfd"]; x != nil {
				prof := p.bfd(x, field+".bfd")
				if bfd != nil && *bfd != prof {
					p.errf(x, field+".bfd", "every BFD ToR must run the same interval, multiplier and multihop")
				}
				bfd = &prof
				bfdToRs = append(bfdToRs, tor.Name)
			}
			t.ToRs = append(t.ToRs, tor)
		}
		if len(t.Clients) > 0 && len(t.ToRs) > 0 {
			t.Clients[0].ToR = t.ToRs[0].Name
		}
	}
	if v := f["nodes"]; v != nil {
		t.Nodes = nil
		if v.Kind != yaml.SequenceNode {
			p.errf(v, "topology.nodes", "want a list of nodes")
		}
		for i, nd := range v.Content {
			field := fmt.Sprintf("topology.nodes[%d]", i)
			nf := p.fields(nd, field, "name", "address", "asn")
			node := topology.Node{ASN: 65100}
			if x := nf["name"]; x != nil {
				node.Name = p.str(x, field+".name")
			}
			if x := nf["address"]; x != nil {
				node.Address = p.inSegment(x, field+".address", t.Segment)
			}
			if x := nf["asn"]; x != nil {
				node.ASN = p.asn(x, field+".asn")
			}
			t.Nodes = append(t.Nodes, node)
		}
	}
	if v := f["dualStack"]; v != nil && p.boolean(v, "topology.dualStack") {
		dualStack(&t, ref)
	}
	if v := f["l2"]; v != nil {
		t.L2 = p.l2(v, "topology.l2", t.Segment6.IsValid())
	}
	if bfd != nil {
		t.BFDProfiles["scenario"] = *bfd
		for i := range t.Nodes {
			t.Nodes[i].BFDProfile = "scenario"
			t.Nodes[i].BFDToRs = bfdToRs
		}
	}
	t.SetDefaults()
	if err := t.Validate(); err != nil && len(p.errs) == 0 {
		p.errf(n, "topology", "%v", err)
	}
	return backend.Topology{Topology: t}
}

// dualStack gives the fabric the reference fabric's IPv6 segment and
// client link: every ToR and node gets the IPv6 address written with the
// same last digits as its IPv4 one (10.0.0.21: fd00:10::21), the next-hop of
// the IPv6 routes it learns or announces. The BGP sessions stay IPv4 and
// carry both families (the BGPPeers set dualStackAddressFamily).
func dualStack(t *topology.Topology, ref topology.Topology) {
	t.Segment6 = ref.Segment6
	six := func(a netip.Addr) netip.Addr {
		b := a.As4()
		six, _ := netip.ParseAddr(fmt.Sprintf("%s%d", ref.Segment6.Addr(), b[3]))
		return six
	}
	for i := range t.ToRs {
		t.ToRs[i].Address6 = six(t.ToRs[i].Address)
	}
	for i := range t.Nodes {
		t.Nodes[i].Address6 = six(t.Nodes[i].Address)
	}
	for i := range t.Clients {
		if i < len(ref.Clients) {
			t.Clients[i].Link6 = ref.Clients[i].Link6
		}
	}
}

// holdTime is a BGP hold time: whole seconds, at least 3 s.
func (p *parser) holdTime(n *yaml.Node, field string) time.Duration {
	d := p.duration(n, field)
	if d != 0 && (d < 3*time.Second || d%time.Second != 0) {
		p.errf(n, field, "%v must be whole seconds, at least 3s", d)
	}
	return d
}

// skip reads the backends a scenario cannot run on, each with its reason.
func (p *parser) skip(n *yaml.Node, field string) map[string]string {
	out := map[string]string{}
	if n.Kind != yaml.MappingNode {
		p.errf(n, field, "want a mapping of backend (lab, kind) to the reason the scenario cannot run there")
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "lab" && k.Value != "kind" {
			p.errf(k, field+"."+k.Value, "unknown backend %q (want lab or kind)", k.Value)
			continue
		}
		reason := strings.TrimSpace(p.str(v, field+"."+k.Value))
		switch {
		case reason == "":
			p.errf(v, field+"."+k.Value, "say why the scenario cannot run on %s", k.Value)
		case strings.ContainsAny(reason, "&|!,()/:"):
			p.errf(v, field+"."+k.Value, "%q may not contain any of &|!,()/:", reason)
		}
		out[k.Value] = reason
	}
	return out
}

func (p *parser) asn(n *yaml.Node, field string) uint32 {
	v, err := strconv.ParseUint(p.str(n, field), 10, 32)
	if err != nil || v == 0 {
		p.errf(n, field, "%q is not an AS number (1-4294967295)", n.Value)
	}
	return uint32(v)
}

func (p *parser) inSegment(n *yaml.Node, field string, seg netip.Prefix) netip.Addr {
	a := p.addr(n, field)
	if a.IsValid() && !seg.Contains(a) {
		p.errf(n, field, "%s is outside the fabric's segment %s", a, seg)
	}
	return a
}

func (p *parser) bfd(n *yaml.Node, field string) topology.BFDProfile {
	f := p.fields(n, field, "interval", "multiplier", "multihop", "minimumTtl")
	prof := topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}
	if v := f["interval"]; v != nil {
		d := p.duration(v, field+".interval")
		if d != 0 && (d < 10*time.Millisecond || d > time.Minute || d%time.Millisecond != 0) {
			p.errf(v, field+".interval", "%v must be whole milliseconds in 10ms-1m", d)
		}
		ms := uint32(d / time.Millisecond)
		prof.ReceiveInterval, prof.TransmitInterval = ms, ms
	}
	if v := f["multiplier"]; v != nil {
		prof.DetectMultiplier = uint32(p.integer(v, field+".multiplier", 2, 255))
	}
	if v := f["multihop"]; v != nil {
		prof.Multihop = p.boolean(v, field+".multihop")
	}
	if v := f["minimumTtl"]; v != nil {
		prof.MinimumTTL = uint32(p.integer(v, field+".minimumTtl", 1, 254))
		if !prof.Multihop {
			p.errf(v, field+".minimumTtl", "needs multihop: true (a single-hop session accepts TTL 255 only)")
		}
	}
	return prof
}

func (p *parser) manifests(n *yaml.Node, field string) []Manifest {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, field, "want a list of manifest files or inline objects")
		return nil
	}
	var out []Manifest
	for i, c := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch c.Kind {
		case yaml.ScalarNode:
			path := c.Value
			if !filepath.IsAbs(path) {
				path = filepath.Join(p.dir, path)
			}
			if _, err := os.Stat(path); err != nil {
				p.errf(c, f, "no manifest file %s (paths are relative to the scenario file)", c.Value)
			}
			out = append(out, Manifest{Path: path, Line: c.Line})
		case yaml.MappingNode:
			b, err := yaml.Marshal(c)
			if err != nil {
				p.errf(c, f, "%v", err)
			}
			out = append(out, Manifest{Inline: b, Line: c.Line})
		default:
			p.errf(c, f, "want a file path or an inline object")
		}
	}
	return out
}

func (p *parser) node(n *yaml.Node, field string) string {
	name := p.str(n, field)
	if _, ok := p.topo.Node(name); !ok && name != "" {
		p.errf(n, field, "%q is not a node of the topology (nodes: %s)", name, strings.Join(p.topo.NodeNames(), ", "))
	}
	return name
}

func (p *parser) tor(n *yaml.Node, field string) string {
	name := p.str(n, field)
	if _, ok := p.topo.ToR(name); !ok && name != "" {
		p.errf(n, field, "%q is not a ToR of the topology (ToRs: %s)", name, strings.Join(p.topo.ToRNames(), ", "))
	}
	return name
}

func (p *parser) nodes(n *yaml.Node, field string) []string {
	return p.list(n, field, "node names", p.node)
}

// family reads which of a Service's addresses a step is about (see
// Service.Family).
func (p *parser) family(n *yaml.Node, field string) string {
	f := p.str(n, field)
	if f != backend.FamilyIPv4 && f != backend.FamilyIPv6 {
		p.errf(n, field, "%q is neither %s nor %s (the Service's spec.ipFamilies values)", f, backend.FamilyIPv4, backend.FamilyIPv6)
		return ""
	}
	if f == backend.FamilyIPv6 && !p.topo.Segment6.IsValid() {
		p.errf(n, field, "the topology is IPv4 only: an IPv6 route needs topology.dualStack: true")
	}
	return f
}

// addrAny is a literal route address of either family; an IPv6 one needs a
// dual-stack topology.
func (p *parser) addrAny(n *yaml.Node, field string) netip.Addr {
	a, err := netip.ParseAddr(p.str(n, field))
	switch {
	case err != nil || a.Zone() != "":
		p.errf(n, field, "%q is not an IP address", n.Value)
		return netip.Addr{}
	case a.Is6() && !p.topo.Segment6.IsValid():
		p.errf(n, field, "%s is IPv6 but the topology is IPv4 only (topology.dualStack: true adds IPv6)", a)
	}
	return a.Unmap()
}

func (p *parser) service(n *yaml.Node, field string) Service {
	s := p.str(n, field)
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		ns, name = "default", s
	}
	if name == "" || ns == "" {
		p.errf(n, field, "%q is not a Service name (write name or namespace/name)", s)
	}
	return Service{Namespace: ns, Name: name}
}
