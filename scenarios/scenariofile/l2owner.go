package scenariofile

import (
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// L2Any is the value of expect.l2 that accepts every node of the topology.
const L2Any = "any"

// RefPrefix starts a reference to the node an earlier l2 expectation
// recorded with `as`: `as: owner` records it, `$owner` names it.
const RefPrefix = "$"

// IsRef tells whether a node name is a reference ($name).
func IsRef(name string) bool { return strings.HasPrefix(name, RefPrefix) }

// refName is what `as` may record under: a plain name, not a node's.
var refName = regexp.MustCompile(`^[a-z][a-zA-Z0-9_-]*$`)

// nodeRef reads a node name, or a reference to the node an earlier l2
// expectation recorded (`$owner`).
func (p *parser) nodeRef(n *yaml.Node, field string) string {
	if !IsRef(n.Value) || n.Kind != yaml.ScalarNode {
		return p.node(n, field)
	}
	name := strings.TrimPrefix(n.Value, RefPrefix)
	if _, ok := p.refs[name]; !ok {
		known := slices.Sorted(func(yield func(string) bool) {
			for k := range p.refs {
				if !yield(RefPrefix + k) {
					return
				}
			}
		})
		if len(known) == 0 {
			known = []string{"none"}
		}
		p.errf(n, field, "%s is not recorded by an earlier step (an l2 expectation's `as: %s`; recorded so far: %s)", n.Value, name, strings.Join(known, ", "))
	}
	return n.Value
}

func (p *parser) nodeRefs(n *yaml.Node, field string) []string {
	return p.list(n, field, "node names", p.nodeRef)
}

// l2Owners reads expect.l2: a node, a reference, a list of them (any one
// of them), or `any` (every node). One node without a list is e.L2; the
// rest is e.L2Any.
func (p *parser) l2Owners(v *yaml.Node, field string, e *Expect) {
	switch {
	case v.Kind == yaml.SequenceNode:
		e.L2Any = p.nodeRefs(v, field)
		if len(e.L2Any) == 0 {
			p.errf(v, field, "an empty list: name the nodes that may answer, or write any")
		}
	case v.Kind == yaml.ScalarNode && v.Value == L2Any:
		e.L2Any = p.topo.NodeNames()
	default:
		e.L2 = p.nodeRef(v, field)
	}
}

// l2Extras reads what an l2 expectation adds to the node it waits for:
// except (nodes that must not be the one), as (record the node found for
// later steps) and exclusive (no two owners at once since the last action
// step).
func (p *parser) l2Extras(f map[string]*yaml.Node, field string, e *Expect) {
	if v := f["except"]; v != nil {
		e.L2Except = p.nodeRefs(v, field+".except")
		if e.L2 != "" {
			p.errf(v, field+".except", "except goes with l2: any or a list of nodes")
		}
	}
	if v := f["as"]; v != nil {
		name := p.str(v, field+".as")
		_, isNode := p.topo.Node(name)
		switch {
		case !refName.MatchString(name):
			p.errf(v, field+".as", "%q is not a plain name (letters, digits, - and _, starting with a lower-case letter; refer to it as %sname)", name, RefPrefix)
		case isNode:
			p.errf(v, field+".as", "%q is a node of the topology: record under another name", name)
		}
		if p.refs == nil {
			p.refs = map[string]int{}
		}
		p.refs[name] = v.Line
		e.As = name
	}
	if v := f["exclusive"]; v != nil {
		e.Exclusive = p.boolean(v, field+".exclusive")
	}
}

// L2Candidates are the nodes an l2 expectation accepts, references
// resolved by resolve (the runner's recorded nodes), except the excluded
// ones.
func (e Expect) L2Candidates(resolve func(string) string) []string {
	cands := e.L2Any
	if e.L2 != "" {
		cands = []string{e.L2}
	}
	except := map[string]bool{}
	for _, n := range e.L2Except {
		except[resolve(n)] = true
	}
	var out []string
	for _, n := range cands {
		if n = resolve(n); !except[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// IsL2 tells whether the expectation is about the L2 client's neighbour
// entry (layer2 mode) instead of a route.
func (e Expect) IsL2() bool { return e.L2 != "" || len(e.L2Any) > 0 }

// l2Who describes the nodes an l2 expectation accepts.
func (e Expect) l2Who() string {
	who := e.L2 + "'s MAC"
	if len(e.L2Any) > 0 {
		who = "the MAC of any of " + strings.Join(e.L2Any, ", ")
	}
	if len(e.L2Except) > 0 {
		who += " but " + strings.Join(e.L2Except, ", ")
	}
	return who
}
