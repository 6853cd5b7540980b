// Package scenariofile reads declarative scenario files: a topology, the
// manifests to apply unchanged, and steps (apply, endpoints, fault, repair,
// wait, expect, flows) that a generic runner plays on any backend. The
// format is documented in scenarios/README.md. A malformed file is rejected
// with an error naming the file, the line and the field.
package scenariofile

import (
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Scenario is one parsed file.
type Scenario struct {
	// File is the path the scenario was read from.
	File        string
	Name        string
	Description string
	Labels      []string
	// Skip maps a backend name to the reason the scenario cannot run there
	// (the spec gets the label "skip-<backend>: <reason>" and the report
	// shows it as skipped with that reason).
	Skip     map[string]string
	Topology backend.Topology
	// Manifests are applied, in order, before the first step.
	Manifests []Manifest
	Steps     []Step
}

// StepKind names what a step does.
type StepKind string

// Step kinds.
const (
	StepApply     StepKind = "apply"
	StepDelete    StepKind = "delete"
	StepEndpoints StepKind = "endpoints"
	StepFault     StepKind = "fault"
	StepRepair    StepKind = "repair"
	StepWait      StepKind = "wait"
	StepExpect    StepKind = "expect"
	StepFlows     StepKind = "flows"
	StepLabel     StepKind = "label"
	StepRepeat    StepKind = "repeat"
	StepReject    StepKind = "reject"
	// StepStream starts a steady stream that keeps running across the
	// steps after it; StepStopStream stops it and checks what it lost.
	StepStream     StepKind = "stream"
	StepStopStream StepKind = "stop-stream"
)

// StepKinds lists every step kind.
var StepKinds = []StepKind{StepApply, StepDelete, StepEndpoints, StepFault, StepRepair, StepWait, StepExpect, StepFlows, StepLabel, StepRepeat, StepReject, StepStream, StepStopStream}

// Step is one step; which fields are set depends on Kind.
type Step struct {
	Kind StepKind
	// Line is where the step starts in the file.
	Line int
	// Manifests of apply and delete.
	Manifests []Manifest
	// Service of endpoints, expect and flows.
	Service Service
	// Endpoints of an endpoints step.
	Endpoints []backend.Endpoint
	// Fault of a fault or repair step.
	Fault backend.Fault
	// Wait is the pause of a wait step.
	Wait time.Duration
	// Expect of an expect step.
	Expect Expect
	// Flows of a flows step.
	Flows Flows
	// Label of a label step.
	Label Label
	// Repeat of a repeat step.
	Repeat Repeat
	// Reject of a reject step.
	Reject Reject
	// Stream of a stream step.
	Stream Stream
	// StopStream of a stop-stream step.
	StopStream StopStream
}

// Stream holds connections open to a Service from the client while the
// steps after it run, each sending a sequence-numbered message every
// Interval that the node answering the connection echoes.
type Stream struct {
	Proto string
	Port  uint16
	// Connections is how many connections the stream holds.
	Connections int
	Interval    time.Duration
	// Timeout is how long a message may go unanswered before it and its
	// connection count as lost.
	Timeout time.Duration
	// Via is where the connections start: backend.ViaL2 for the L2
	// client, "" for the first client behind a ToR.
	Via string
}

// StopStream stops the Service's stream and bounds what it lost.
type StopStream struct {
	// Lost are upper bounds, -1 for none: one the step leaves out is 0,
	// unless the step expects a loss (gives any lower bound; then none).
	Lost StreamLoss
	// LostAtLeast are lower bounds, 0 for none: proof that a fault does
	// cost the stream.
	LostAtLeast StreamLoss
	// Spread, when given, are the nodes that must have answered the
	// stream's connections: each at least one, no other node any.
	Spread []string
}

// StreamLoss bounds a stream's lost connections and lost packets (messages
// unanswered).
type StreamLoss struct{ Connections, Packets int }

// Reject applies manifests that the apiserver must refuse (CEL rules or the
// admission webhook), each with a message containing Field: bad input
// stopped at kubectl apply, naming what is wrong.
type Reject struct {
	Manifests []Manifest
	// Field is the field path the refusal must name, e.g. "spec.addresses[0]".
	Field string
}

// Repeat plays its steps Times times, each round after a random pause of
// up to Jitter (so faults land at random phases of the BGP and BFD
// timers). The figures of its timed expectations become distributions:
// median, and p99 from 100 rounds on (the maximum below that).
type Repeat struct {
	Times  int
	Jitter time.Duration
	Steps  []Step
	// Leaks, when set, reads every speaker's goroutines and in-use heap
	// before the first round and requires them back within tolerance
	// (backend.RuntimeOff) after the last.
	Leaks bool
}

// Label sets and removes labels of a node.
type Label struct {
	Node   string
	Set    map[string]string
	Remove []string
}

// Service names a Service ("namespace/name"; namespace default when left
// out) and, for the steps about its address (expect, flows, stream,
// stop-stream), which of its addresses: Family "IPv4" or "IPv6" (a
// dual-stack Service has one of each), "" for its first.
type Service struct{ Namespace, Name, Family string }

func (s Service) String() string {
	if s.Family != "" {
		return s.Namespace + "/" + s.Name + " (" + s.Family + ")"
	}
	return s.Namespace + "/" + s.Name
}

// Expect is what an expect step asserts of every listed ToR.
type Expect struct {
	// Address is the route's address when given instead of a Service.
	Address netip.Addr
	// PrefixLength makes the route the address's covering prefix of that
	// length (an aggregate, BGPAdvertisement.aggregationLength or
	// aggregationLengthV6); 0: the host route (/32 or /128).
	PrefixLength int
	// ECMP is the exact next-hop set (node names) per ToR; empty: withdrawn.
	ECMP map[string][]string
	// Within bounds, by the RIB's timestamps, the time from the last action
	// step (endpoints, fault, repair, apply, delete, label) to the change; 0: any.
	Within time.Duration
	// NotBefore is a lower bound on the same figure (e.g. a hold timer that
	// must not fire early); 0: none.
	NotBefore time.Duration
	// Timeout is how long to wait for the set (default: Within + 10 s, or
	// 60 s).
	Timeout time.Duration
	// Unchanged requires that the ToR's set did not change at all since the
	// last action step began (not even away and back).
	Unchanged bool
	// Reestablished are nodes whose BGP session with each listed ToR must
	// have come to Established again since the last action step began (a
	// speaker restart): waited for before the set is checked.
	Reestablished []string
	// Communities, when not nil, are exactly the communities every path
	// carries ([]: none).
	Communities []string
	LocalPref   uint32
	// Pool the Service's address must come from.
	Pool netip.Prefix
	// Pending expects the Service to get no address: the controller posts a
	// Warning Event on it (with reason PendingReason when given) and it
	// has no EXTERNAL-IP. ECMP is then empty.
	Pending       bool
	PendingReason string
	// L2 expects the L2 client to resolve the address to this node's MAC
	// (layer2 mode: the node answering ARP/NDP for it) instead of a route:
	// ECMP is then empty, Within and NotBefore time the neighbour entry's
	// change.
	L2 string
	// Flush removes the L2 client's entry first, so it resolves afresh
	// (Within then counts from the flush).
	Flush bool
	// L2Any, instead of L2, accepts any of these nodes (expect.l2 a list,
	// or any: every node); L2Except are nodes it must not be. Both may
	// hold references ($name, IsRef).
	L2Any, L2Except []string
	// As records the node the L2 client resolved the address to under
	// this name, for later steps' references ($name).
	As string
	// Exclusive requires that since the last action step no ARP request
	// for the address was answered by two nodes and the L2 client's entry
	// did not go back and forth between nodes (backend.L2Exclusive).
	Exclusive bool
}

// Flows sends flows from the client and checks where they land.
type Flows struct {
	Proto string
	Port  uint16
	Count int
	// Spread are the nodes every flow must land on, each at least once.
	Spread []string
	// Lost is how many flows may go unanswered.
	Lost int
	// Via is where the flows start: backend.ViaL2 for the L2 client, ""
	// for the first client behind a ToR.
	Via string
}

// Manifest is a file of Kubernetes objects (Path, absolute) or one object
// written inline in the scenario (YAML).
type Manifest struct {
	Path   string
	Inline []byte
	// Line is where the manifest is named or written in the scenario file.
	Line int
}

// Route is the prefix the expectation is about for a route address ip: the
// host route, or its covering prefix of PrefixLength bits.
func (e Expect) Route(ip netip.Addr) netip.Prefix {
	if e.PrefixLength == 0 {
		return backend.HostRoute(ip)
	}
	p, _ := ip.Prefix(e.PrefixLength)
	return p
}
