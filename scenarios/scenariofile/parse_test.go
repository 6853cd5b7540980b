package scenariofile

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

const good = `name: drain
description: the last endpoint leaves node3
labels: [drain]
topology:
  holdTime: 9s
  tors:
    - {name: tor1, address: 10.0.0.1, bfd: {interval: 300ms, multiplier: 3}}
    - {name: tor2, address: 10.0.0.2}
  nodes:
    - {name: node1, address: 10.0.0.21}
    - {name: node2, address: 10.0.0.22}
manifests:
  - pool.yaml
  - apiVersion: v1
    kind: Service
    metadata: {name: web}
steps:
  - endpoints: {service: web, nodes: [node1, node2]}
  - expect: {service: default/web, ecmp: [node1, node2], communities: ["65000:100"]}
  - fault: {kind: cut-link, node: node2}
  - expect: {service: web, ecmp: {tor1: [node1]}, within: 1250ms}
  - expect: {service: web, ecmp: {tor2: [node1]}, notBefore: 6s, within: 10s}
  - repair: {kind: cut-link, node: node2}
  - wait: 1s
  - flows: {service: web, proto: tcp, spread: [node1, node2]}
`

// parse writes pool.yaml next to the scenario so relative paths resolve.
func parse(t *testing.T, text string) (*Scenario, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pool.yaml"), []byte("kind: IPAddressPool\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Parse("cat/drain.yaml", dir, []byte(text))
}

func TestParseGood(t *testing.T) {
	s, err := parse(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "drain" || len(s.Steps) != 8 || len(s.Manifests) != 2 || s.Manifests[1].Inline == nil {
		t.Fatalf("parsed %+v", s)
	}
	topo := s.Topology
	if got := topo.BFDToRs("node2"); len(got) != 1 || got[0] != "tor1" {
		t.Errorf("BFD ToRs %v, want [tor1]", got)
	}
	if topo.DetectTime("tor1", "node2") != 900*time.Millisecond || topo.HoldTime() != 9*time.Second || topo.KeepaliveInterval() != 3*time.Second {
		t.Errorf("timers: detect %v hold %v keepalive %v", topo.DetectTime("tor1", "node2"), topo.HoldTime(), topo.KeepaliveInterval())
	}
	if e := s.Steps[1].Expect; len(e.ECMP) != 2 || len(e.ECMP["tor2"]) != 2 || e.Timeout != time.Minute {
		t.Errorf("a list sets every ToR: %+v", e)
	}
	if e := s.Steps[3].Expect; e.Within != 1250*time.Millisecond || e.Timeout != 11250*time.Millisecond || len(e.ECMP) != 1 {
		t.Errorf("timed expect: %+v", e)
	}
	if f := s.Steps[2].Fault; f != (backend.Fault{Kind: backend.FaultLinkCut, Target: "node2"}) {
		t.Errorf("fault %+v", f)
	}
	if fl := s.Steps[7].Flows; fl.Proto != "tcp" || fl.Count != 60 || fl.Port != 443 {
		t.Errorf("flows %+v", fl)
	}
	if s.Steps[0].Service.Namespace != "default" {
		t.Errorf("service namespace %q", s.Steps[0].Service.Namespace)
	}
}

// Each malformed file is rejected with file, line and field.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown top-level field", "labels: [drain]", "labels: [drain]\nowner: me",
			`cat/drain.yaml:4: owner: unknown field`},
		{"unknown field in a step", "fault: {kind: cut-link, node: node2}", "fault: {kind: cut-link, node: node2, color: red}",
			`cat/drain.yaml:20: steps[2].fault.color: unknown field (want one of kind, node, tor, for, link)`},
		{"unknown step kind", "  - wait: 1s", "  - sleep: 1s",
			`cat/drain.yaml:24: steps[6].sleep: unknown step kind "sleep" (want one of apply, delete, endpoints, fault, repair, wait, expect, flows, label, repeat, reject, stream, stop-stream)`},
		{"unknown fault kind", "kind: cut-link, node", "kind: cut-lnk, node",
			`cat/drain.yaml:20: steps[2].fault.kind: unknown fault kind "cut-lnk"`},
		{"node the topology lacks", "fault: {kind: cut-link, node: node2}", "fault: {kind: cut-link, node: node7}",
			`cat/drain.yaml:20: steps[2].fault.node: "node7" is not a node of the topology (nodes: node1, node2)`},
		{"node in an expected set the topology lacks", "ecmp: [node1, node2]", "ecmp: [node1, node3]",
			`cat/drain.yaml:19: steps[1].expect.ecmp[1]: "node3" is not a node of the topology`},
		{"ToR the topology lacks", "ecmp: {tor1: [node1]}", "ecmp: {tor3: [node1]}",
			`cat/drain.yaml:21: steps[3].expect.ecmp: "tor3" is not a ToR of the topology (ToRs: tor1, tor2)`},
		{"bad duration", "within: 1250ms", "within: 1.25 seconds",
			`cat/drain.yaml:21: steps[3].expect.within: "1.25 seconds" is not a duration (write e.g. 900ms, 9s, 1m)`},
		{"bad hold time", "holdTime: 9s", "holdTime: 9500ms",
			`cat/drain.yaml:5: topology.holdTime: 9.5s must be whole seconds, at least 3s`},
		{"node address outside the fabric", "address: 10.0.0.22}", "address: 192.168.1.22}",
			`cat/drain.yaml:11: topology.nodes[1].address: 192.168.1.22 is outside the fabric's segment 10.0.0.0/24`},
		{"expected address inside the fabric", "expect: {service: web, ecmp: {tor1", "expect: {address: 10.0.0.5, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.address: 10.0.0.5 is inside the fabric's segment 10.0.0.0/24`},
		{"bad AS number", "{name: node1, address: 10.0.0.21}", "{name: node1, address: 10.0.0.21, asn: 0}",
			`cat/drain.yaml:10: topology.nodes[0].asn: "0" is not an AS number`},
		{"missing manifest file", "  - pool.yaml", "  - pools.yaml",
			`cat/drain.yaml:13: manifests[0]: no manifest file pools.yaml`},
		{"prefix length out of range", "expect: {service: web, ecmp: {tor1", "expect: {service: web, prefixLength: 33, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.prefixLength: "33" is not a whole number in 1-32`},
		{"missing expected set", ", ecmp: [node1, node2], communities", ", communities",
			`cat/drain.yaml:19: steps[1].expect.ecmp: missing`},
		{"bad per-ToR hold time", "{name: tor2, address: 10.0.0.2}", "{name: tor2, address: 10.0.0.2, holdTime: 2s}",
			`cat/drain.yaml:8: topology.tors[1].holdTime: 2s must be whole seconds, at least 3s`},
		{"unknown ToR flavour", "{name: tor2, address: 10.0.0.2}", "{name: tor2, address: 10.0.0.2, flavour: bird}",
			`cat/drain.yaml:8: topology.tors[1].flavour: "bird" is neither gobgp (the fabric's GoBGP router) nor frr (Debian's FRR)`},
		{"skip on an unknown backend", "labels: [drain]", "labels: [drain]\nskip: {docker: no reason}",
			`cat/drain.yaml:4: skip.docker: unknown backend "docker" (want lab or kind)`},
		{"skip reason with a label operator", "labels: [drain]", "labels: [drain]\nskip: {kind: \"nodes are containers (no netns)\"}",
			`cat/drain.yaml:4: skip.kind: "nodes are containers (no netns)" may not contain any of &|!,()/:`},
		{"repeat without times", "  - wait: 1s", "  - repeat: {steps: [wait: 1s]}",
			`cat/drain.yaml:24: steps[6].repeat.times: missing: how many rounds`},
		{"repeat in a repeat", "  - wait: 1s", "  - repeat: {times: 2, steps: [repeat: {times: 2, steps: [wait: 1s]}]}",
			`cat/drain.yaml:24: steps[6].repeat.steps[0].repeat: a repeat may not hold another repeat`},
		{"unknown step in a repeat", "  - wait: 1s", "  - repeat: {times: 2, steps: [sleep: 1s]}",
			`cat/drain.yaml:24: steps[6].repeat.steps[0].sleep: unknown step kind "sleep"`},
		{"pending with an ECMP set", "expect: {service: default/web, ecmp", "expect: {service: default/web, pending: true, ecmp",
			`cat/drain.yaml:19: steps[1].expect.ecmp: a pending Service has no address and no route: ecmp does not apply`},
		{"freeze-node on a ToR", "fault: {kind: cut-link, node: node2}", "fault: {kind: freeze-node, tor: tor1}",
			`cat/drain.yaml:20: steps[2].fault.node: fault freeze-node needs a node`},
		{"drain-node without a target", "fault: {kind: cut-link, node: node2}", "fault: {kind: drain-node}",
			`cat/drain.yaml:20: steps[2].fault.node: fault drain-node needs a node`},
		{"drain-node of a node the topology lacks", "fault: {kind: cut-link, node: node2}", "fault: {kind: drain-node, node: node7}",
			`cat/drain.yaml:20: steps[2].fault.node: "node7" is not a node of the topology (nodes: node1, node2)`},
		{"drain-node with a ToR", "fault: {kind: cut-link, node: node2}", "fault: {kind: drain-node, node: node2, tor: tor1}",
			`cat/drain.yaml:20: steps[2].fault.tor: only the BFD faults take a ToR`},
		{"freeze-node with a duration", "fault: {kind: cut-link, node: node2}", "fault: {kind: freeze-node, node: node2, for: 2s}",
			`cat/drain.yaml:20: steps[2].fault.for: only bfd-flap takes a duration`},
		{"pending false", "expect: {service: default/web, ecmp: [node1, node2], communities: [\"65000:100\"]}", "expect: {service: web, pending: false}",
			`cat/drain.yaml:19: steps[1].expect.pending: pending: false expects nothing`},
		{"reject without a field", "  - wait: 1s", "  - reject: {manifests: [pool.yaml]}",
			`cat/drain.yaml:24: steps[6].reject.field: missing: the field the refusal must name`},
		{"reject without manifests", "  - wait: 1s", "  - reject: {field: spec.addresses}",
			`cat/drain.yaml:24: steps[6].reject.manifests: missing: the manifests the apiserver must refuse`},
		{"reject of a missing file", "  - wait: 1s", "  - reject: {manifests: [bad.yaml], field: spec.addresses}",
			`cat/drain.yaml:24: steps[6].reject.manifests[0]: no manifest file bad.yaml`},
		{"IPv6 family on an IPv4 fabric", "expect: {service: web, ecmp: {tor1", "expect: {service: web, family: IPv6, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.family: the topology is IPv4 only: an IPv6 route needs topology.dualStack: true`},
		{"unknown family", "expect: {service: web, ecmp: {tor1", "expect: {service: web, family: ipv6, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.family: "ipv6" is neither IPv4 nor IPv6 (the Service's spec.ipFamilies values)`},
		{"family of a literal address", "expect: {service: web, ecmp: {tor1", "expect: {address: 203.0.113.5, family: IPv4, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.family: the family of an address is its own: family goes with service`},
		{"IPv6 address on an IPv4 fabric", "expect: {service: web, ecmp: {tor1", "expect: {address: \"2001:db8::5\", ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.address: 2001:db8::5 is IPv6 but the topology is IPv4 only (topology.dualStack: true adds IPv6)`},
		{"IPv6 prefix length out of range", "expect: {service: web, ecmp: {tor1", "expect: {service: web, family: IPv4, prefixLength: 64, ecmp: {tor1",
			`cat/drain.yaml:21: steps[3].expect.prefixLength: "64" is not a whole number in 1-32`},
		{"flows of an unknown family", "flows: {service: web,", "flows: {service: web, family: IPv5,",
			`cat/drain.yaml:25: steps[7].flows.family: "IPv5" is neither IPv4 nor IPv6`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(good, tt.from, tt.to, 1)
			if text == good {
				t.Fatalf("test edit %q not found", tt.from)
			}
			_, err := parse(t, text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tt.want)
			}
		})
	}
}

// The node faults take a node.
func TestParseNodeFaults(t *testing.T) {
	for _, k := range []backend.FaultKind{backend.FaultNodeFreeze, backend.FaultNodeDrain} {
		text := strings.Replace(good, "fault: {kind: cut-link, node: node2}", "fault: {kind: "+string(k)+", node: node2}", 1)
		text = strings.Replace(text, "repair: {kind: cut-link, node: node2}", "repair: {kind: "+string(k)+", node: node2}", 1)
		s, err := parse(t, text)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		want := backend.Fault{Kind: k, Target: "node2"}
		if f := s.Steps[2].Fault; f != want {
			t.Errorf("fault %+v, want %+v", f, want)
		}
		if f := s.Steps[5].Fault; s.Steps[5].Kind != StepRepair || f != want {
			t.Errorf("repair %+v, want %+v", f, want)
		}
	}
}

// The newer fields: per-ToR hold time, skip, repeat, pending.
func TestParseRepeatPendingSkip(t *testing.T) {
	text := strings.Replace(good, "{name: tor2, address: 10.0.0.2}", "{name: tor2, address: 10.0.0.2, holdTime: 30s, flavour: frr}", 1)
	text = strings.Replace(text, "labels: [drain]", "labels: [drain]\nskip: {kind: nodes are containers here}", 1)
	text = strings.Replace(text, "  - wait: 1s\n", `  - repeat:
      times: 3
      jitter: 500ms
      leaks: true
      steps:
        - fault: {kind: freeze-speaker, node: node2}
        - expect: {service: web, ecmp: {tor1: [node1]}, within: 1250ms}
        - repair: {kind: freeze-speaker, node: node2}
  - expect: {service: other, pending: {reason: AllocationFailed}, timeout: 5s}
`, 1)
	s, err := parse(t, text)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Topology.HoldTimeOf("tor2"); got != 30*time.Second {
		t.Errorf("tor2 hold time %v, want 30s", got)
	}
	if got := s.Topology.KeepaliveOf("tor2"); got != 10*time.Second {
		t.Errorf("tor2 keepalive %v, want 10s", got)
	}
	if got := s.Topology.HoldTimeOf("tor1"); got != 9*time.Second {
		t.Errorf("tor1 hold time %v, want the topology's 9s", got)
	}
	if got := s.Topology.FlavourOf("tor2"); got != "frr" {
		t.Errorf("tor2 flavour %q, want frr", got)
	}
	if r, _ := s.Topology.Role("tor1"); r.Flavour != "gobgp" {
		t.Errorf("tor1 role %+v, want flavour gobgp", r)
	}
	if s.Skip["kind"] != "nodes are containers here" {
		t.Errorf("skip %v", s.Skip)
	}
	rep := s.Steps[6]
	if rep.Kind != StepRepeat || rep.Repeat.Times != 3 || rep.Repeat.Jitter != 500*time.Millisecond || !rep.Repeat.Leaks || len(rep.Repeat.Steps) != 3 {
		t.Fatalf("repeat %+v", rep)
	}
	if e := rep.Repeat.Steps[1].Expect; e.Within != 1250*time.Millisecond {
		t.Errorf("expect in repeat %+v", e)
	}
	p := s.Steps[7]
	if !p.Expect.Pending || p.Expect.PendingReason != "AllocationFailed" || p.Expect.Timeout != 5*time.Second || p.Service.Name != "other" {
		t.Errorf("pending %+v", p)
	}
}

// prefixLength turns the expectation to the covering prefix (an aggregate).
func TestExpectPrefixLength(t *testing.T) {
	s, err := parse(t, strings.Replace(good, "expect: {service: web, ecmp: {tor1", "expect: {service: web, prefixLength: 28, ecmp: {tor1", 1))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("203.0.113.21")
	if got, want := s.Steps[3].Expect.Route(ip), netip.MustParsePrefix("203.0.113.16/28"); got != want {
		t.Errorf("prefixLength 28: route %v, want %v", got, want)
	}
	if got, want := s.Steps[1].Expect.Route(ip), netip.MustParsePrefix("203.0.113.21/32"); got != want {
		t.Errorf("no prefixLength: route %v, want %v", got, want)
	}
}

// The example in scenarios/README.md parses (the suite also runs it).
func TestReadmeExample(t *testing.T) {
	path, data, err := ReadmeExample(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(path, "..", data); err != nil {
		t.Fatal(err)
	}
}

// Every catalogue file parses.
func TestCatalogue(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "catalogue", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no catalogue files: %v", err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Error(err)
		}
	}
}

// A reject step holds its manifests (files or inline) and the field.
func TestParseReject(t *testing.T) {
	text := strings.Replace(good, "  - wait: 1s", `  - reject:
      field: spec.addresses[0]
      manifests:
        - pool.yaml
        - {apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: bad}, spec: {addresses: [10.0.0.0/33]}}`, 1)
	s, err := parse(t, text)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Steps[6]
	if st.Kind != StepReject || st.Reject.Field != "spec.addresses[0]" || len(st.Reject.Manifests) != 2 ||
		filepath.Base(st.Reject.Manifests[0].Path) != "pool.yaml" || !strings.Contains(string(st.Reject.Manifests[1].Inline), "10.0.0.0/33") {
		t.Fatalf("step = %+v", st)
	}
	if got := st.String(); !strings.Contains(got, "refused naming spec.addresses[0]") {
		t.Errorf("String() = %q", got)
	}
}

// A ToR's gracefulRestart and an expect's reestablished nodes are read; a
// node the topology lacks is refused.
func TestParseGracefulRestart(t *testing.T) {
	s, err := Load(filepath.Join("..", "catalogue", "graceful-restart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tor := range s.Topology.ToRs {
		if !tor.GracefulRestart {
			t.Errorf("%s: gracefulRestart not read", tor.Name)
		}
	}
	var found bool
	for _, st := range s.Steps {
		if st.Kind == StepExpect && len(st.Expect.Reestablished) == 1 && st.Expect.Reestablished[0] == "node2" && st.Expect.Unchanged {
			found = true
			if got := st.String(); !strings.Contains(got, "reestablished node2") {
				t.Errorf("step renders as %q", got)
			}
		}
	}
	if !found {
		t.Fatal("no expect with reestablished: [node2]")
	}
	text := strings.Replace(good, "  - wait: 1s", "  - expect: {service: web, ecmp: [node1], reestablished: [node9]}", 1)
	if _, err := parse(t, text); err == nil || !strings.Contains(err.Error(), "reestablished") {
		t.Fatalf("unknown node accepted: %v", err)
	}
}

// streamed is the good file with a stream held across the fault and repair.
func streamed(start, stop string) string {
	text := strings.Replace(good, "  - fault: {kind: cut-link, node: node2}\n", "  - "+start+"\n  - fault: {kind: cut-link, node: node2}\n", 1)
	return strings.Replace(text, "  - wait: 1s\n", "  - wait: 1s\n  - "+stop+"\n", 1)
}

// A stream starts with its defaults or the fields given and stops with
// bounds: none given are 0 lost; lower bounds alone leave no upper ones.
func TestParseStream(t *testing.T) {
	s, err := parse(t, streamed("stream: {service: web}", "stop-stream: {service: web}"))
	if err != nil {
		t.Fatal(err)
	}
	st := s.Steps[2]
	if st.Kind != StepStream || st.Service.Name != "web" {
		t.Fatalf("step %+v", st)
	}
	if want := (Stream{Proto: "tcp", Port: 443, Connections: 10, Interval: 10 * time.Millisecond, Timeout: time.Second}); st.Stream != want {
		t.Errorf("defaults %+v, want %+v", st.Stream, want)
	}
	stop := s.Steps[8]
	if stop.Kind != StepStopStream || stop.StopStream.Lost != (StreamLoss{}) || stop.StopStream.LostAtLeast != (StreamLoss{}) {
		t.Errorf("stop %+v, want at most 0 lost", stop)
	}
	s, err = parse(t, streamed("stream: {service: default/web, proto: tcp, port: 80, connections: 30, interval: 20ms, timeout: 2s}",
		"stop-stream: {service: web, lostAtLeast: {connections: 3}, spread: [node1, node2]}"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stream{Proto: "tcp", Port: 80, Connections: 30, Interval: 20 * time.Millisecond, Timeout: 2 * time.Second}); s.Steps[2].Stream != want {
		t.Errorf("stream %+v, want %+v", s.Steps[2].Stream, want)
	}
	ss := s.Steps[8].StopStream
	if ss.Lost != (StreamLoss{-1, -1}) || ss.LostAtLeast != (StreamLoss{Connections: 3}) || len(ss.Spread) != 2 {
		t.Errorf("stop %+v, want at least 3 connections lost and no upper bound", ss)
	}
	if got := s.Steps[8].String(); got != "stop the stream to default/web: lost at least 3 connections; connections answered by node1, node2" {
		t.Errorf("described as %q", got)
	}
	s, err = parse(t, streamed("stream: {service: web}", "stop-stream: {service: web, lost: {connections: 2}, lostAtLeast: {packets: 1}}"))
	if err != nil {
		t.Fatal(err)
	}
	if ss := s.Steps[8].StopStream; ss.Lost != (StreamLoss{Connections: 2, Packets: -1}) || ss.LostAtLeast != (StreamLoss{Packets: 1}) {
		t.Errorf("stop %+v", ss)
	}
}

// A malformed stream is refused with file, line, step and field.
func TestParseStreamErrors(t *testing.T) {
	tests := []struct{ name, start, stop, want string }{
		{"unknown field", "stream: {service: web, rate: 100}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.rate: unknown field (want one of service, family, proto, port, connections, interval, timeout, via)`},
		{"udp", "stream: {service: web, proto: udp}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.proto: "udp": a stream holds TCP connections (proto: tcp)`},
		{"too many connections", "stream: {service: web, connections: 5000}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.connections: "5000" is not a whole number in 1-200`},
		{"bad interval", "stream: {service: web, interval: fast}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.interval: "fast" is not a duration`},
		{"interval too short", "stream: {service: web, interval: 100us}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.interval: 100µs: between 1ms and 10s`},
		{"no service", "stream: {connections: 3}", "stop-stream: {service: web}",
			`cat/drain.yaml:20: steps[2].stream.service: missing: the Service the stream goes to`},
		{"never stopped", "stream: {service: web}", "wait: 1s",
			`cat/drain.yaml:20: steps[2].stream: the stream to default/web is never stopped: end the scenario with a stop-stream step`},
		{"stopped without a start", "wait: 1s", "stop-stream: {service: web}",
			`cat/drain.yaml:21: steps[3].stop-stream.service: default/web has no stream running: start one with a stream step before`},
		{"started twice", "stream: {service: web}\n  - stream: {service: web, connections: 2}", "stop-stream: {service: web}",
			`cat/drain.yaml:21: steps[3].stream.service: default/web already has a stream (started at steps[2]): stop it first`},
		{"unknown bound", "stream: {service: web}", "stop-stream: {service: web, lost: {flows: 0}}",
			`cat/drain.yaml:26: steps[8].stop-stream.lost.flows: unknown field (want one of connections, packets)`},
		{"negative bound", "stream: {service: web}", "stop-stream: {service: web, lost: {packets: -1}}",
			`cat/drain.yaml:26: steps[8].stop-stream.lost.packets: "-1" is not a whole number in 0-1000000`},
		{"empty lower bound", "stream: {service: web}", "stop-stream: {service: web, lostAtLeast: {}}",
			`cat/drain.yaml:26: steps[8].stop-stream.lostAtLeast: give connections or packets (at least 1)`},
		{"lower above upper", "stream: {service: web}", "stop-stream: {service: web, lost: {connections: 1}, lostAtLeast: {connections: 2}}",
			`cat/drain.yaml:26: steps[8].stop-stream.lostAtLeast.connections: 2 is more than lost.connections 1`},
		{"spread over an unknown node", "stream: {service: web}", "stop-stream: {service: web, spread: [node9]}",
			`cat/drain.yaml:26: steps[8].stop-stream.spread[0]: "node9" is not a node of the topology`},
		{"in a repeat", "repeat: {times: 2, steps: [stream: {service: web}]}", "wait: 1s",
			`cat/drain.yaml:20: steps[2].repeat.steps[0].stream: a stream runs across the scenario's steps: start and stop it outside the repeat`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, streamed(tt.start, tt.stop))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain\n%s", err, tt.want)
			}
		})
	}
	// flows to the Service while its stream runs (the good file's flows
	// step comes after the wait).
	text := strings.Replace(good, "  - fault: {kind: cut-link, node: node2}\n", "  - stream: {service: web}\n  - fault: {kind: cut-link, node: node2}\n", 1)
	text += "  - stop-stream: {service: web}\n"
	want := `cat/drain.yaml:26: steps[8].flows.service: default/web has a stream running (started at steps[2]): stop it before sending flows`
	if _, err := parse(t, text); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain\n%s", err, want)
	}
}

// dualStackGood is good with a dual-stack topology and steps about the
// Service's IPv6 address.
var dualStackGood = strings.NewReplacer(
	"holdTime: 9s\n", "holdTime: 9s\n  dualStack: true\n",
	"expect: {service: web, ecmp: {tor1", "expect: {service: web, family: IPv6, prefixLength: 124, ecmp: {tor1",
	"flows: {service: web,", "flows: {service: web, family: IPv6,",
).Replace(good)

func TestParseDualStack(t *testing.T) {
	s, err := parse(t, dualStackGood)
	if err != nil {
		t.Fatal(err)
	}
	topo := s.Topology
	if topo.Segment6 != netip.MustParsePrefix("fd00:10::/64") {
		t.Errorf("segment6 %v, want fd00:10::/64", topo.Segment6)
	}
	for name, want := range map[string]string{"tor1": "fd00:10::1", "tor2": "fd00:10::2"} {
		if r, _ := topo.ToR(name); r.Address6 != netip.MustParseAddr(want) {
			t.Errorf("%s: address6 %v, want %s", name, r.Address6, want)
		}
	}
	for name, want := range map[string]string{"node1": "fd00:10::21", "node2": "fd00:10::22"} {
		if n, _ := topo.Node(name); n.Address6 != netip.MustParseAddr(want) {
			t.Errorf("%s: address6 %v, want %s", name, n.Address6, want)
		}
	}
	if len(topo.Clients) == 0 || topo.Clients[0].Link6 != netip.MustParsePrefix("fd00:31::/126") {
		t.Errorf("clients %+v, want the reference client's IPv6 link", topo.Clients)
	}
	ip := netip.MustParseAddr("2001:db8:113::5")
	if got := topo.NextHops(ip, "node2", "node1"); len(got) != 2 || got[0] != netip.MustParseAddr("fd00:10::21") || got[1] != netip.MustParseAddr("fd00:10::22") {
		t.Errorf("IPv6 next-hops %v, want the nodes' IPv6 addresses", got)
	}
	if got := topo.NextHops(netip.MustParseAddr("203.0.113.5"), "node1"); len(got) != 1 || got[0] != netip.MustParseAddr("10.0.0.21") {
		t.Errorf("IPv4 next-hops %v, want node1's IPv4 address", got)
	}
	e := s.Steps[3]
	if e.Service != (Service{Namespace: "default", Name: "web", Family: backend.FamilyIPv6}) {
		t.Errorf("expect step's Service %+v, want default/web's IPv6 address", e.Service)
	}
	if got := e.Expect.Route(ip); got != netip.MustParsePrefix("2001:db8:113::/124") {
		t.Errorf("route %v, want the /124 covering %v", got, ip)
	}
	if f := s.Steps[7]; f.Service.Family != backend.FamilyIPv6 {
		t.Errorf("flows step's Service %+v, want IPv6", f.Service)
	}
	if s.Steps[4].Service.Family != "" {
		t.Errorf("a step without family: %+v, want the Service's first address", s.Steps[4].Service)
	}

	bad := strings.Replace(dualStackGood, "expect: {service: web, ecmp: {tor2", "expect: {address: \"fd00:10::5\", ecmp: {tor2", 1)
	want := `cat/drain.yaml:23: steps[4].expect.address: fd00:10::5 is inside the fabric's segment fd00:10::/64`
	if _, err := parse(t, bad); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain\n%s", err, want)
	}
}
