package scenariofile

import (
	"net/netip"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// The L2 segment's subnets when the file leaves them out.
var (
	defaultL2Subnet  = netip.MustParsePrefix("192.168.50.0/24")
	defaultL2Subnet6 = netip.MustParsePrefix("fd00:50::/64")
)

// l2 reads the topology's L2 segment (layer2 mode): its subnet (default
// 192.168.50.0/24) and pool, and with a dual-stack topology its subnet6
// (default fd00:50::/64) and pool6. The client, the nodes' addresses and
// MACs are the fabric's defaults (topology.L2).
func (p *parser) l2(n *yaml.Node, field string, dual bool) *topology.L2 {
	l := &topology.L2{Subnet: defaultL2Subnet}
	f := p.fields(n, field, "subnet", "pool", "subnet6", "pool6")
	prefix := func(key string, v6 bool) netip.Prefix {
		v := f[key]
		if v == nil {
			return netip.Prefix{}
		}
		pr, err := netip.ParsePrefix(p.str(v, field+"."+key))
		if err != nil || pr.Addr().Is6() != v6 {
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			p.errf(v, field+"."+key, "%q is not an %s prefix", v.Value, fam)
			return netip.Prefix{}
		}
		return pr
	}
	if pr := prefix("subnet", false); pr.IsValid() {
		l.Subnet = pr
	}
	l.Pool = prefix("pool", false)
	if dual {
		l.Subnet6 = defaultL2Subnet6
	}
	for _, key := range []string{"subnet6", "pool6"} {
		if v := f[key]; v != nil && !dual {
			p.errf(v, field+"."+key, "the topology is IPv4 only: an IPv6 L2 subnet needs topology.dualStack: true")
		}
	}
	if pr := prefix("subnet6", true); pr.IsValid() {
		l.Subnet6 = pr
	}
	l.Pool6 = prefix("pool6", true)
	return l
}

// via reads where flows or a stream start: l2, the L2 client.
func (p *parser) via(n *yaml.Node, field string) string {
	v := p.str(n, field)
	switch {
	case v != backend.ViaL2:
		p.errf(n, field, "%q: the only other place to send from is %s (the L2 client); leave via out for the client behind the first ToR", v, backend.ViaL2)
	case p.topo.L2 == nil:
		p.errf(n, field, "the topology has no L2 segment: add topology.l2")
	}
	return v
}

// l2Family checks that a step over the L2 segment about a Service's IPv6
// address has an IPv6 L2 subnet.
func (p *parser) l2Family(n *yaml.Node, field string, svc Service) {
	if svc.Family == backend.FamilyIPv6 && (p.topo.L2 == nil || !p.topo.L2.Subnet6.IsValid()) {
		p.errf(n, field, "an IPv6 address over the L2 segment needs topology.l2 with dualStack: true")
	}
}

// expectL2 reads an expect step's l2 form: the node the L2 client must
// resolve the address to, with within, notBefore, timeout, flush and pool;
// the route fields do not apply.
func (p *parser) expectL2(n *yaml.Node, f map[string]*yaml.Node, field string, svc Service, e *Expect) {
	v := f["l2"]
	if p.topo.L2 == nil {
		p.errf(v, field+".l2", "the topology has no L2 segment: add topology.l2")
	}
	p.l2Owners(v, field+".l2", e)
	p.l2Extras(f, field, e)
	p.l2Family(n, field+".family", svc)
	for _, k := range []string{"prefixLength", "ecmp", "unchanged", "reestablished", "communities", "localPref"} {
		if f[k] != nil {
			p.errf(f[k], field+"."+k, "an l2 expectation is about the L2 client's neighbour entry, not a route: %s does not apply", k)
		}
	}
	if x := f["flush"]; x != nil {
		e.Flush = p.boolean(x, field+".flush")
	}
	p.timing(f, field, e, 30*time.Second)
}

// link reads which link of a node a cut-link cuts: segment or l2 (a
// topology with an L2 segment; without link, every link).
func (p *parser) link(n *yaml.Node, field string, kind backend.FaultKind) string {
	l := p.str(n, field)
	switch {
	case kind != backend.FaultLinkCut:
		p.errf(n, field, "only %s takes a link", backend.FaultLinkCut)
	case l != backend.LinkSegment && l != backend.LinkL2:
		p.errf(n, field, "%q is neither %s nor %s (leave link out to cut every link of the node)", l, backend.LinkSegment, backend.LinkL2)
	case p.topo.L2 == nil:
		p.errf(n, field, "the node has one link: a link to pick needs topology.l2")
	}
	return l
}

func (e Expect) describeL2(what string) string {
	s := what + " resolved by the L2 client to " + e.l2Who()
	if e.Flush {
		s += " (entry flushed first)"
	}
	if e.Within > 0 {
		s += " within " + e.Within.String()
	}
	if e.NotBefore > 0 {
		s += " not before " + e.NotBefore.String()
	}
	if e.As != "" {
		s += " (recorded as " + RefPrefix + e.As + ")"
	}
	if e.Exclusive {
		s += ", one owner at a time"
	}
	return s
}
