package scenariofile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

func kindNames() string {
	s := make([]string, len(StepKinds))
	for i, k := range StepKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func (p *parser) step(n *yaml.Node, field string) Step {
	st := Step{Line: n.Line}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		p.errf(n, field, "a step is a mapping with exactly one key, its kind (%s)", kindNames())
		return st
	}
	k, v := n.Content[0], n.Content[1]
	st.Kind = StepKind(k.Value)
	field = join(field, k.Value)
	switch st.Kind {
	case StepApply, StepDelete:
		st.Manifests = p.manifests(v, field)
	case StepEndpoints:
		st.Service, st.Endpoints = p.endpoints(v, field)
	case StepFault, StepRepair:
		st.Fault = p.fault(v, field)
	case StepWait:
		st.Wait = p.duration(v, field)
	case StepExpect:
		st.Service, st.Expect = p.expect(v, field)
	case StepFlows:
		st.Service, st.Flows = p.flows(v, field)
	case StepLabel:
		st.Label = p.label(v, field)
	case StepRepeat:
		st.Repeat = p.repeat(v, field)
	case StepReject:
		st.Reject = p.reject(v, field)
	case StepStream:
		st.Service, st.Stream = p.stream(v, field)
	case StepStopStream:
		st.Service, st.StopStream = p.stopStream(v, field)
	default:
		p.errf(k, field, "unknown step kind %q (want one of %s)", k.Value, kindNames())
	}
	return st
}

func (p *parser) reject(n *yaml.Node, field string) Reject {
	f := p.fields(n, field, "manifests", "field")
	var r Reject
	if v := f["manifests"]; v != nil {
		r.Manifests = p.manifests(v, field+".manifests")
		if len(r.Manifests) == 0 {
			p.errf(v, field+".manifests", "a reject step needs at least one manifest")
		}
	} else {
		p.errf(n, field+".manifests", "missing: the manifests the apiserver must refuse")
	}
	if v := f["field"]; v != nil {
		r.Field = p.str(v, field+".field")
	}
	if r.Field == "" {
		p.errf(n, field+".field", "missing: the field the refusal must name, e.g. spec.addresses[0]")
	}
	return r
}

func (p *parser) repeat(n *yaml.Node, field string) Repeat {
	r := Repeat{}
	if p.inRepeat {
		p.errf(n, field, "a repeat may not hold another repeat")
		return r
	}
	f := p.fields(n, field, "times", "jitter", "leaks", "steps")
	if v := f["times"]; v != nil {
		r.Times = p.integer(v, field+".times", 1, 10000)
	} else {
		p.errf(n, field+".times", "missing: how many rounds")
	}
	if v := f["jitter"]; v != nil {
		r.Jitter = p.duration(v, field+".jitter")
	}
	if v := f["leaks"]; v != nil {
		r.Leaks = p.boolean(v, field+".leaks")
	}
	v := f["steps"]
	if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		p.errf(n, field+".steps", "a repeat needs a list of steps")
		return r
	}
	p.inRepeat = true
	for i, c := range v.Content {
		r.Steps = append(r.Steps, p.step(c, fmt.Sprintf("%s.steps[%d]", field, i)))
	}
	p.inRepeat = false
	return r
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	switch p.str(n, field) {
	case "true":
		return true
	case "false":
	default:
		p.errf(n, field, "%q is neither true nor false", n.Value)
	}
	return false
}

func (p *parser) endpoints(n *yaml.Node, field string) (Service, []backend.Endpoint) {
	f := p.fields(n, field, "service", "nodes", "notReady", "terminating")
	var svc Service
	if v := f["service"]; v != nil {
		svc = p.service(v, field+".service")
	} else {
		p.errf(n, field+".service", "missing")
	}
	eps := []backend.Endpoint{}
	add := func(key string, e backend.Endpoint) {
		if v := f[key]; v != nil {
			for _, name := range p.nodes(v, field+"."+key) {
				e.Node = name
				eps = append(eps, e)
			}
		}
	}
	add("nodes", backend.Endpoint{Ready: true, Serving: true})
	add("notReady", backend.Endpoint{})
	add("terminating", backend.Endpoint{Serving: true, Terminating: true})
	return svc, eps
}

func (p *parser) fault(n *yaml.Node, field string) backend.Fault {
	f := p.fields(n, field, "kind", "node", "tor", "for", "link")
	var flt backend.Fault
	kv := f["kind"]
	if kv == nil {
		p.errf(n, field+".kind", "missing")
		return flt
	}
	flt.Kind = backend.FaultKind(p.str(kv, field+".kind"))
	if !slices.Contains(backend.FaultKinds, flt.Kind) {
		var names []string
		for _, k := range backend.FaultKinds {
			names = append(names, string(k))
		}
		p.errf(kv, field+".kind", "unknown fault kind %q (want one of %s)", flt.Kind, strings.Join(names, ", "))
		return flt
	}
	switch {
	case flt.Kind.TargetsNode():
		if v := f["node"]; v != nil {
			flt.Target = p.nodeRef(v, field+".node")
		} else {
			p.errf(n, field+".node", "fault %s needs a node", flt.Kind)
		}
		if v := f["tor"]; v != nil {
			if flt.Kind != backend.FaultBFDFlap && flt.Kind != backend.FaultBFDAdminDown {
				p.errf(v, field+".tor", "only the BFD faults take a ToR")
			}
			flt.ToR = p.tor(v, field+".tor")
		}
	case flt.Kind.TargetsToR():
		if v := f["tor"]; v != nil {
			flt.Target = p.tor(v, field+".tor")
		} else {
			p.errf(n, field+".tor", "fault %s needs a ToR", flt.Kind)
		}
		if v := f["node"]; v != nil {
			p.errf(v, field+".node", "fault %s takes a ToR, not a node", flt.Kind)
		}
	default:
		for _, key := range []string{"node", "tor"} {
			if v := f[key]; v != nil {
				p.errf(v, field+"."+key, "fault %s takes no target", flt.Kind)
			}
		}
	}
	if v := f["for"]; v != nil {
		if flt.Kind != backend.FaultBFDFlap {
			p.errf(v, field+".for", "only bfd-flap takes a duration (hold other faults with a wait step before the repair)")
		}
		flt.Duration = p.duration(v, field+".for")
	}
	if v := f["link"]; v != nil {
		flt.Link = p.link(v, field+".link", flt.Kind)
	}
	return flt
}

func (p *parser) expect(n *yaml.Node, field string) (Service, Expect) {
	f := p.fields(n, field, "service", "family", "address", "prefixLength", "ecmp", "within", "notBefore", "timeout", "unchanged", "reestablished", "communities", "localPref", "pool", "pending", "l2", "flush", "except", "as", "exclusive")
	var svc Service
	var e Expect
	switch {
	case f["service"] != nil && f["address"] != nil:
		p.errf(f["address"], field+".address", "give a service or an address, not both")
	case f["service"] != nil:
		svc = p.service(f["service"], field+".service")
		if v := f["family"]; v != nil {
			svc.Family = p.family(v, field+".family")
		}
	case f["address"] != nil:
		e.Address = p.addrAny(f["address"], field+".address")
		for _, seg := range []netip.Prefix{p.topo.Segment, p.topo.Segment6} {
			if seg.Contains(e.Address) {
				p.errf(f["address"], field+".address", "%s is inside the fabric's segment %s: a Service address comes from a pool", e.Address, seg)
			}
		}
		if v := f["family"]; v != nil {
			p.errf(v, field+".family", "the family of an address is its own: family goes with service")
		}
	default:
		p.errf(n, field+".service", "missing (or give an address)")
	}
	if v := f["pending"]; v != nil {
		p.pending(v, field+".pending", &e)
		if f["service"] == nil {
			p.errf(v, field+".pending", "only a Service can be pending: give its name in service")
		}
		for _, k := range []string{"family", "address", "prefixLength", "ecmp", "within", "notBefore", "unchanged", "reestablished", "communities", "localPref", "pool", "l2", "flush", "except", "as", "exclusive"} {
			if f[k] != nil {
				p.errf(f[k], field+"."+k, "a pending Service has no address and no route: %s does not apply", k)
			}
		}
		e.Timeout = 30 * time.Second
		if v := f["timeout"]; v != nil {
			e.Timeout = p.duration(v, field+".timeout")
		}
		return svc, e
	}
	if f["l2"] != nil {
		p.expectL2(n, f, field, svc, &e)
		p.pool(f, field, &e)
		return svc, e
	}
	for _, k := range []string{"flush", "except", "as", "exclusive"} {
		if v := f[k]; v != nil {
			p.errf(v, field+"."+k, "%s goes with l2 (the L2 client's neighbour entry)", k)
		}
	}
	if v := f["prefixLength"]; v != nil {
		bits := 32
		if svc.Family == backend.FamilyIPv6 || e.Address.Is6() {
			bits = 128
		}
		e.PrefixLength = p.integer(v, field+".prefixLength", 1, bits)
	}
	v := f["ecmp"]
	if v == nil {
		p.errf(n, field+".ecmp", "missing: state the exact next-hop set (node names; [] for withdrawn)")
	} else {
		e.ECMP = map[string][]string{}
		switch v.Kind {
		case yaml.SequenceNode:
			set := p.nodes(v, field+".ecmp")
			for _, tor := range p.topo.ToRNames() {
				e.ECMP[tor] = set
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(v.Content); i += 2 {
				tor := p.tor(v.Content[i], field+".ecmp")
				e.ECMP[tor] = p.nodes(v.Content[i+1], field+".ecmp."+tor)
			}
		default:
			p.errf(v, field+".ecmp", "want a list of nodes (every ToR) or a mapping ToR → list of nodes")
		}
	}
	p.timing(f, field, &e, 60*time.Second)
	if v := f["unchanged"]; v != nil {
		e.Unchanged = p.boolean(v, field+".unchanged")
	}
	if v := f["reestablished"]; v != nil {
		e.Reestablished = p.nodes(v, field+".reestablished")
	}
	if v := f["communities"]; v != nil {
		e.Communities = p.strs(v, field+".communities")
	}
	if v := f["localPref"]; v != nil {
		e.LocalPref = uint32(p.integer(v, field+".localPref", 0, 1<<31-1))
	}
	p.pool(f, field, &e)
	return svc, e
}

// timing reads an expectation's within, notBefore and timeout (default
// within + 10s, or def).
func (p *parser) timing(f map[string]*yaml.Node, field string, e *Expect, def time.Duration) {
	if v := f["within"]; v != nil {
		e.Within = p.duration(v, field+".within")
	}
	if v := f["notBefore"]; v != nil {
		e.NotBefore = p.duration(v, field+".notBefore")
		if e.Within != 0 && e.NotBefore > e.Within {
			p.errf(v, field+".notBefore", "%v is after within %v", e.NotBefore, e.Within)
		}
	}
	e.Timeout = def
	if e.Within > 0 {
		e.Timeout = e.Within + 10*time.Second
	}
	if v := f["timeout"]; v != nil {
		e.Timeout = p.duration(v, field+".timeout")
	}
}

// pool reads the pool the Service's address must come from.
func (p *parser) pool(f map[string]*yaml.Node, field string, e *Expect) {
	if v := f["pool"]; v != nil {
		pool, err := netip.ParsePrefix(p.str(v, field+".pool"))
		if err != nil {
			p.errf(v, field+".pool", "%q is not a prefix", v.Value)
		}
		e.Pool = pool
	}
}

// pending reads `pending: true` or `pending: {reason: AllocationFailed}`
// (the reason of the Warning Event the controller posts).
func (p *parser) pending(n *yaml.Node, field string, e *Expect) {
	if n.Kind == yaml.MappingNode {
		f := p.fields(n, field, "reason")
		e.Pending = true
		if v := f["reason"]; v != nil {
			e.PendingReason = p.str(v, field+".reason")
		}
		return
	}
	if !p.boolean(n, field) {
		p.errf(n, field, "pending: false expects nothing; leave it out and state the ECMP set")
	}
	e.Pending = true
}

func (p *parser) label(n *yaml.Node, field string) Label {
	f := p.fields(n, field, "node", "set", "remove")
	l := Label{Set: map[string]string{}}
	if v := f["node"]; v != nil {
		l.Node = p.node(v, field+".node")
	} else {
		p.errf(n, field+".node", "missing")
	}
	if v := f["set"]; v != nil {
		if v.Kind != yaml.MappingNode {
			p.errf(v, field+".set", "want a mapping of label keys to values")
		} else {
			for i := 0; i+1 < len(v.Content); i += 2 {
				l.Set[v.Content[i].Value] = p.str(v.Content[i+1], field+".set."+v.Content[i].Value)
			}
		}
	}
	if v := f["remove"]; v != nil {
		l.Remove = p.strs(v, field+".remove")
	}
	if len(l.Set) == 0 && len(l.Remove) == 0 {
		p.errf(n, field, "set or remove at least one label")
	}
	return l
}

func (p *parser) flows(n *yaml.Node, field string) (Service, Flows) {
	f := p.fields(n, field, "service", "family", "proto", "port", "count", "spread", "lost", "via")
	fl := Flows{Proto: "udp", Port: 443, Count: 60}
	var svc Service
	if v := f["service"]; v != nil {
		svc = p.service(v, field+".service")
	} else {
		p.errf(n, field+".service", "missing")
	}
	if v := f["family"]; v != nil {
		svc.Family = p.family(v, field+".family")
	}
	if v := f["proto"]; v != nil {
		fl.Proto = p.str(v, field+".proto")
		if fl.Proto != "udp" && fl.Proto != "tcp" {
			p.errf(v, field+".proto", "%q is neither udp nor tcp", fl.Proto)
		}
	}
	if v := f["port"]; v != nil {
		fl.Port = uint16(p.integer(v, field+".port", 1, 65535))
	}
	if v := f["count"]; v != nil {
		fl.Count = p.integer(v, field+".count", 1, 1000)
	}
	if v := f["spread"]; v != nil {
		fl.Spread = p.nodeRefs(v, field+".spread")
	} else {
		p.errf(n, field+".spread", "missing: the nodes the flows must land on")
	}
	if v := f["lost"]; v != nil {
		fl.Lost = p.integer(v, field+".lost", 0, 1000)
	}
	if v := f["via"]; v != nil {
		fl.Via = p.via(v, field+".via")
		p.l2Family(v, field+".family", svc)
	}
	return svc, fl
}

// String describes a step for people (the runner's By text).
func (s Step) String() string {
	switch s.Kind {
	case StepApply, StepDelete:
		var names []string
		for _, m := range s.Manifests {
			if m.Path != "" {
				names = append(names, m.Path)
			} else {
				names = append(names, fmt.Sprintf("inline object (line %d)", m.Line))
			}
		}
		return fmt.Sprintf("%s %s", s.Kind, strings.Join(names, ", "))
	case StepEndpoints:
		var parts []string
		for _, e := range s.Endpoints {
			state := "ready"
			switch {
			case e.Terminating:
				state = "terminating"
			case !e.Ready:
				state = "not ready"
			}
			parts = append(parts, e.Node+" ("+state+")")
		}
		return fmt.Sprintf("endpoints of %s: %s", s.Service, strings.Join(parts, ", "))
	case StepFault:
		return "fault: " + s.Fault.String()
	case StepRepair:
		return "repair: " + s.Fault.String()
	case StepReject:
		return fmt.Sprintf("%s refused naming %s", Step{Kind: StepApply, Manifests: s.Reject.Manifests}, s.Reject.Field)
	case StepWait:
		return "wait " + s.Wait.String()
	case StepExpect:
		return "expect " + s.Expect.describe(s.Service)
	case StepLabel:
		return fmt.Sprintf("label node %s: set %v, remove %v", s.Label.Node, s.Label.Set, s.Label.Remove)
	case StepRepeat:
		return fmt.Sprintf("repeat %d times (jitter %v): %d steps", s.Repeat.Times, s.Repeat.Jitter, len(s.Repeat.Steps))
	case StepStream:
		return fmt.Sprintf("stream to %s: %d %s connections, a packet every %v each", s.Service, s.Stream.Connections, s.Stream.Proto, s.Stream.Interval)
	case StepStopStream:
		return fmt.Sprintf("stop the stream to %s: %s", s.Service, s.StopStream.describe())
	case StepFlows:
		if s.Flows.Via != "" {
			return fmt.Sprintf("%d %s flows to %s via %s spread over %s", s.Flows.Count, s.Flows.Proto, s.Service, s.Flows.Via, strings.Join(s.Flows.Spread, ", "))
		}
		return fmt.Sprintf("%d %s flows to %s spread over %s", s.Flows.Count, s.Flows.Proto, s.Service, strings.Join(s.Flows.Spread, ", "))
	}
	return string(s.Kind)
}

func (e Expect) describe(svc Service) string {
	what := svc.String()
	if e.Pending {
		if e.PendingReason != "" {
			return what + " pending (no address; Warning " + e.PendingReason + ")"
		}
		return what + " pending (no address)"
	}
	if e.Address.IsValid() {
		what = e.Address.String()
	}
	if e.IsL2() {
		return e.describeL2(what)
	}
	tors := make([]string, 0, len(e.ECMP))
	for t := range e.ECMP {
		tors = append(tors, t)
	}
	slices.Sort(tors)
	var parts []string
	for _, t := range tors {
		parts = append(parts, fmt.Sprintf("%s {%s}", t, strings.Join(e.ECMP[t], ", ")))
	}
	if e.PrefixLength > 0 {
		what += fmt.Sprintf(" (its /%d)", e.PrefixLength)
	}
	s := what + " via " + strings.Join(parts, "; ")
	if e.Within > 0 {
		s += " within " + e.Within.String()
	}
	if e.NotBefore > 0 {
		s += " not before " + e.NotBefore.String()
	}
	if len(e.Reestablished) > 0 {
		s += ", reestablished " + strings.Join(e.Reestablished, ",")
	}
	if e.Unchanged {
		s += ", unchanged"
	}
	return s
}
