package scenariofile

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

const l2Good = `name: l2
labels: [l2]
skip: {kind: no L2 segment yet}
topology:
  l2: {pool: 192.168.50.192/26}
steps:
  - endpoints: {service: web, nodes: [node1, node2, node3]}
  - expect: {service: web, l2: node2, pool: 192.168.50.192/26}
  - flows: {service: web, proto: tcp, via: l2, spread: [node2]}
  - stream: {service: web, via: l2, connections: 5}
  - fault: {kind: cut-link, node: node2, link: l2}
  - expect: {service: web, l2: node1, within: 2s}
  - repair: {kind: cut-link, node: node2, link: l2}
  - stop-stream: {service: web, lostAtLeast: {connections: 1}}
  - expect: {service: web, l2: node1, flush: true, within: 500ms}
`

// The L2 segment, l2 expectations, flows and streams via l2 and a cut of
// one link parse into the model.
func TestParseL2(t *testing.T) {
	s, err := parse(t, l2Good)
	if err != nil {
		t.Fatal(err)
	}
	l := s.Topology.L2
	if l == nil || l.Subnet != netip.MustParsePrefix("192.168.50.0/24") || l.Pool != netip.MustParsePrefix("192.168.50.192/26") ||
		l.Client != "l2client" || l.Subnet6.IsValid() {
		t.Fatalf("topology.l2 = %+v", l)
	}
	if n, _ := s.Topology.Node("node2"); s.Topology.L2Addr(n) != netip.MustParseAddr("192.168.50.22") {
		t.Errorf("node2's L2 address %v", s.Topology.L2Addr(n))
	}
	if e := s.Steps[1].Expect; e.L2 != "node2" || len(e.ECMP) != 0 || e.Timeout != 30*time.Second || e.Pool != netip.MustParsePrefix("192.168.50.192/26") {
		t.Errorf("expect l2: %+v", e)
	}
	if f := s.Steps[2].Flows; f.Via != backend.ViaL2 || f.Proto != "tcp" {
		t.Errorf("flows via l2: %+v", f)
	}
	if st := s.Steps[3].Stream; st.Via != backend.ViaL2 || st.Connections != 5 {
		t.Errorf("stream via l2: %+v", st)
	}
	if f := s.Steps[4].Fault; f.Link != backend.LinkL2 || f.Kind != backend.FaultLinkCut || f.String() != "cut-link node2 (l2 link)" {
		t.Errorf("fault: %+v %q", f, f.String())
	}
	if e := s.Steps[5].Expect; e.L2 != "node1" || e.Within != 2*time.Second || e.Timeout != 12*time.Second {
		t.Errorf("timed expect l2: %+v", e)
	}
	if e := s.Steps[8].Expect; !e.Flush || !strings.Contains(s.Steps[8].String(), "resolved by the L2 client to node1's MAC (entry flushed first) within 500ms") {
		t.Errorf("flushed expect: %+v, %q", e, s.Steps[8].String())
	}

	dual := strings.Replace(l2Good, "  l2: {pool: 192.168.50.192/26}", "  dualStack: true\n  l2: {pool: 192.168.50.192/26}", 1)
	dual = strings.Replace(dual, "expect: {service: web, l2: node2, pool", "expect: {service: web, family: IPv6, l2: node2, pool", 1)
	s, err = parse(t, dual)
	if err != nil {
		t.Fatal(err)
	}
	if l := s.Topology.L2; l.Subnet6 != netip.MustParsePrefix("fd00:50::/64") || l.Pool6 != netip.MustParsePrefix("fd00:50::1000/116") {
		t.Errorf("dual-stack l2 = %+v", l)
	}
}

// Errors name the line and field.
func TestParseL2Errors(t *testing.T) {
	noL2 := strings.Replace(l2Good, "topology:\n  l2: {pool: 192.168.50.192/26}\n", "", 1)
	tests := []struct {
		name, text, want string
	}{
		{"l2 subnet not IPv4", strings.Replace(l2Good, "l2: {pool:", "l2: {subnet: \"fd00:50::/64\", pool:", 1),
			`cat/drain.yaml:5: topology.l2.subnet: "fd00:50::/64" is not an IPv4 prefix`},
		{"l2 unknown field", strings.Replace(l2Good, "l2: {pool:", "l2: {range: x, pool:", 1),
			`cat/drain.yaml:5: topology.l2.range: unknown field (want one of subnet, pool, subnet6, pool6)`},
		{"l2 subnet6 without dual stack", strings.Replace(l2Good, "l2: {pool:", "l2: {subnet6: \"fd00:50::/64\", pool:", 1),
			`cat/drain.yaml:5: topology.l2.subnet6: the topology is IPv4 only`},
		{"l2 pool holds a node", strings.Replace(l2Good, "pool: 192.168.50.192/26}\nsteps", "pool: 192.168.50.0/27}\nsteps", 1),
			`l2.pool: 192.168.50.0/27 holds node "node1"'s L2 address 192.168.50.21`},
		{"l2 overlaps the segment", strings.Replace(l2Good, "l2: {pool: 192.168.50.192/26}", "l2: {subnet: 10.0.0.0/16, pool: 10.0.200.0/24}", 1),
			`topology: l2.subnet: 10.0.0.0/16 overlaps segment 10.0.0.0/24`},
		{"expect l2 without an L2 segment", noL2, `cat/drain.yaml:6: steps[1].expect.l2: the topology has no L2 segment: add topology.l2`},
		{"flows via l2 without an L2 segment", noL2, `steps[2].flows.via: the topology has no L2 segment`},
		{"stream via l2 without an L2 segment", noL2, `steps[3].stream.via: the topology has no L2 segment`},
		{"link without an L2 segment", noL2, `steps[4].fault.link: the node has one link: a link to pick needs topology.l2`},
		{"expect l2 of an unknown node", strings.Replace(l2Good, "l2: node2, pool", "l2: node7, pool", 1),
			`cat/drain.yaml:8: steps[1].expect.l2: "node7" is not a node of the topology`},
		{"expect l2 with ecmp", strings.Replace(l2Good, "l2: node2, pool", "l2: node2, ecmp: [node2], pool", 1),
			`cat/drain.yaml:8: steps[1].expect.ecmp: an l2 expectation is about the L2 client's neighbour entry, not a route: ecmp does not apply`},
		{"flush without l2", strings.Replace(l2Good, "- endpoints: {service: web, nodes: [node1, node2, node3]}", "- expect: {service: web, ecmp: [node1], flush: true}", 1),
			`cat/drain.yaml:7: steps[0].expect.flush: flush goes with l2`},
		{"expect l2 IPv6 without dual stack", strings.Replace(l2Good, "l2: node2, pool", "family: IPv6, l2: node2, pool", 1),
			`steps[1].expect.family: the topology is IPv4 only`},
		{"bad via", strings.Replace(l2Good, "via: l2, spread", "via: tor2, spread", 1),
			`cat/drain.yaml:9: steps[2].flows.via: "tor2": the only other place to send from is l2`},
		{"bad link", strings.Replace(l2Good, "node: node2, link: l2}\n  - expect", "node: node2, link: eth0}\n  - expect", 1),
			`cat/drain.yaml:11: steps[4].fault.link: "eth0" is neither segment nor l2`},
		{"link on another fault", strings.Replace(l2Good, "{kind: cut-link, node: node2, link: l2}\n  - expect", "{kind: freeze-speaker, node: node2, link: l2}\n  - expect", 1),
			`cat/drain.yaml:11: steps[4].fault.link: only cut-link takes a link`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.text == l2Good {
				t.Fatal("test edit not applied")
			}
			_, err := parse(t, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
}
