package scenariofile

import (
	"slices"
	"strings"
	"testing"
)

const l2OwnerGood = `name: l2 owner
labels: [l2]
topology:
  l2: {}
steps:
  - endpoints: {service: web, nodes: [node1, node2, node3]}
  - expect: {service: web, l2: any, as: owner}
  - flows: {service: web, via: l2, spread: [$owner]}
  - repeat:
      times: 3
      steps:
        - fault: {kind: cut-link, node: $owner}
        - expect: {service: web, l2: any, except: [$owner], as: next, within: 2s, exclusive: true}
        - flows: {service: web, via: l2, spread: [$next]}
        - repair: {kind: cut-link, node: $owner}
        - expect: {service: web, l2: $owner, within: 5s}
  - expect: {service: web, l2: [node2, node3], except: [$next]}
`

// l2: any, a list or a reference; except, as and exclusive; references in
// fault nodes and flows' spread.
func TestParseL2Owner(t *testing.T) {
	s, err := parse(t, l2OwnerGood)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Steps[1].Expect; e.L2 != "" || !slices.Equal(e.L2Any, []string{"node1", "node2", "node3"}) || e.As != "owner" || !e.IsL2() {
		t.Errorf("expect l2 any: %+v", e)
	}
	if f := s.Steps[2].Flows; !slices.Equal(f.Spread, []string{"$owner"}) {
		t.Errorf("flows spread: %v", f.Spread)
	}
	round := s.Steps[3].Repeat.Steps
	if f := round[0].Fault; f.Target != "$owner" || f.String() != "cut-link $owner" {
		t.Errorf("fault on a reference: %+v", f)
	}
	if e := round[1].Expect; !slices.Equal(e.L2Except, []string{"$owner"}) || e.As != "next" || !e.Exclusive {
		t.Errorf("expect except/as/exclusive: %+v", e)
	}
	if got := round[1].String(); !strings.Contains(got, "any of node1, node2, node3 but $owner within 2s (recorded as $next), one owner at a time") {
		t.Errorf("describe: %q", got)
	}
	if e := round[4].Expect; e.L2 != "$owner" || !e.IsL2() {
		t.Errorf("expect l2 of a reference: %+v", e)
	}
	if e := s.Steps[4].Expect; !slices.Equal(e.L2Any, []string{"node2", "node3"}) {
		t.Errorf("expect l2 list: %+v", e)
	}
	refs := map[string]string{"$owner": "node2", "$next": "node3"}
	resolve := func(n string) string {
		if r, ok := refs[n]; ok {
			return r
		}
		return n
	}
	if got := round[1].Expect.L2Candidates(resolve); !slices.Equal(got, []string{"node1", "node3"}) {
		t.Errorf("candidates of any but $owner (node2): %v", got)
	}
	if got := round[4].Expect.L2Candidates(resolve); !slices.Equal(got, []string{"node2"}) {
		t.Errorf("candidates of $owner: %v", got)
	}
	if got := s.Steps[4].Expect.L2Candidates(resolve); !slices.Equal(got, []string{"node2"}) {
		t.Errorf("candidates of [node2, node3] but $next (node3): %v", got)
	}
}

func TestParseL2OwnerErrors(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"reference before it is recorded", "  - flows: {service: web, via: l2, spread: [$owner]}", "  - flows: {service: web, via: l2, spread: [$later]}",
			`cat/drain.yaml:8: steps[2].flows.spread[0]: $later is not recorded by an earlier step (an l2 expectation's ` + "`as: later`" + `; recorded so far: $owner)`},
		{"fault on a reference not recorded", "{kind: cut-link, node: $owner}", "{kind: cut-link, node: $nobody}",
			`steps[3].repeat.steps[0].fault.node: $nobody is not recorded by an earlier step`},
		{"as a node name", "l2: any, as: owner}", "l2: any, as: node2}",
			`steps[1].expect.as: "node2" is a node of the topology: record under another name`},
		{"as not a plain name", "l2: any, as: owner}", "l2: any, as: $owner}",
			`steps[1].expect.as: "$owner" is not a plain name`},
		{"except with one node", "expect: {service: web, l2: [node2, node3], except: [$next]}", "expect: {service: web, l2: node2, except: [$next]}",
			`steps[4].expect.except: except goes with l2: any or a list of nodes`},
		{"as without l2", "  - expect: {service: web, l2: [node2, node3], except: [$next]}", "  - expect: {service: web, ecmp: [node1], as: x}",
			`steps[4].expect.as: as goes with l2`},
		{"exclusive without l2", "  - expect: {service: web, l2: [node2, node3], except: [$next]}", "  - expect: {service: web, ecmp: [node1], exclusive: true}",
			`steps[4].expect.exclusive: exclusive goes with l2`},
		{"empty list", "l2: [node2, node3], except", "l2: [], except",
			`steps[4].expect.l2: an empty list`},
		{"unknown node in a list", "l2: [node2, node3], except", "l2: [node2, node9], except",
			`steps[4].expect.l2[1]: "node9" is not a node of the topology`},
		{"a reference where none is taken", "  - endpoints: {service: web, nodes: [node1, node2, node3]}", "  - endpoints: {service: web, nodes: [$owner]}",
			`steps[0].endpoints.nodes[0]: "$owner" is not a node of the topology`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(l2OwnerGood, tc.old, tc.new, 1)
			if text == l2OwnerGood {
				t.Fatal("test edit not applied")
			}
			_, err := parse(t, text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
}
