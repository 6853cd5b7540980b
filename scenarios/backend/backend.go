// Package backend is the one interface the scenarios are written against.
// A backend brings up a topology of ToR routers and Kubernetes nodes, runs
// ecmplb on it, and lets a spec apply manifests, place endpoints, inject and
// repair faults, and read what every ToR holds: its ECMP RIB, its kernel FIB
// and the timestamped history of both. The specs import this package only;
// the suite's setup picks the implementation (scenarios/lab today).
package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// Set is a ToR's ECMP set of one prefix: its equal-cost paths with their
// attributes (communities, local-pref, AS path) and when it last changed.
type Set = rib.ECMPSet

// Path is one equal-cost path of a Set.
type Path = rib.Path

// Change is one timestamped change of a prefix's next-hop set on a ToR.
type Change = rib.Change

// Event is one timestamped BGP or BFD neighbor state change on a ToR.
type Event = control.Event

// Backend runs ecmplb on a topology. Every method is safe to call from one
// goroutine at a time per spec; faults and reads may run concurrently.
type Backend interface {
	// Name is "lab" or "kind".
	Name() string
	// Topology is the running topology (ToR roles included).
	Topology() Topology

	// Apply applies manifest files unchanged (`kubectl apply -f`), in order.
	Apply(ctx context.Context, files ...string) error
	// TryApply applies one file and reports whether the apiserver accepted
	// it, with kubectl's output; err is for failing to try at all.
	TryApply(ctx context.Context, file string) (out string, accepted bool, err error)
	// Delete deletes what the files describe (missing objects are no error).
	Delete(ctx context.Context, files ...string) error
	// CreateService creates a LoadBalancer Service (externalTrafficPolicy
	// Local, no node ports) selecting app=<name>.
	CreateService(ctx context.Context, namespace, name string) error
	// DeleteService deletes a Service and the endpoints SetEndpoints made.
	DeleteService(ctx context.Context, namespace, name string) error
	// SetEndpoints gives a Service exactly one ready endpoint on each named
	// node (none: no endpoints). The lab writes EndpointSlices; kind runs pods.
	SetEndpoints(ctx context.Context, namespace, service string, nodes ...string) error
	// SetEndpointStates writes endpoints with explicit conditions.
	SetEndpointStates(ctx context.Context, namespace, service string, eps ...Endpoint) error
	// LabelNode sets and removes labels of a node's Node object, as an
	// operator relabelling a node live would.
	LabelNode(ctx context.Context, node string, set map[string]string, remove []string) error
	// ExternalIP waits until the Service has an EXTERNAL-IP of family
	// (FamilyIPv4, FamilyIPv6, or "" for its first, whatever the family).
	ExternalIP(ctx context.Context, namespace, service, family string, timeout time.Duration) (netip.Addr, error)

	// Inject injects a fault and returns when it took effect.
	Inject(ctx context.Context, f Fault) (time.Time, error)
	// Repair undoes a fault (a no-op for faults that repair themselves) and
	// returns when the repair took effect.
	Repair(ctx context.Context, f Fault) (time.Time, error)

	// Route is a ToR's ECMP set of prefix (empty Paths: no route).
	Route(ctx context.Context, tor string, prefix netip.Prefix) (Set, error)
	// KernelRoute is the next-hops of the ToR's kernel FIB route for prefix,
	// sorted (empty: none): what packets follow.
	KernelRoute(ctx context.Context, tor string, prefix netip.Prefix) ([]netip.Addr, error)
	// History is every change of the ToR's ECMP sets, oldest first. A
	// restarted ToR starts a new history.
	History(ctx context.Context, tor string) ([]Change, error)
	// Events is the ToR's BGP and BFD neighbor state changes, oldest first.
	Events(ctx context.Context, tor string) ([]Event, error)
	// WaitBFD waits until the ToR's BFD session with node is in state
	// ("Up", "Down", "AdminDown"), until ctx ends.
	WaitBFD(ctx context.Context, tor, node, state string) error
	// WaitRoute waits until the ToR holds exactly want for prefix in its RIB
	// and its kernel FIB (want empty: no route), until ctx ends.
	WaitRoute(ctx context.Context, tor string, prefix netip.Prefix, want []netip.Addr) error

	// Flows sends n flows of proto ("udp" or "tcp") from the first client to
	// dst and counts the answers by the node that gave them ("" for none).
	// Every node owns dst and answers on it for the duration of the call.
	Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error)

	// SpeakerRuntime reads a node's speaker's goroutines and in-use heap.
	SpeakerRuntime(ctx context.Context, node string) (Runtime, error)
	// SaveSpeakerHeapProfile writes the speaker's heap profile to path.
	SaveSpeakerHeapProfile(ctx context.Context, node, path string) error
	// Running reports whether the node's speaker process runs.
	Running(node string) bool
	// CheckAlive fails when the controller or a speaker has died.
	CheckAlive() error
	// Logs returns the last lines of a component's log: "controller" or
	// "speaker-<node>".
	Logs(component string, lines int) string
	// Diagnose describes the fabric and speakers for a failure message:
	// RIB history of the prefixes and neighbor events since `since`, and the
	// log tails of the named nodes' speakers.
	Diagnose(ctx context.Context, since time.Time, prefixes []netip.Prefix, nodes ...string) string
	// Root is the repository root (manifest paths are relative to it).
	Root() string
}

// Endpoint is one endpoint of a Service on a node, with its conditions.
type Endpoint struct {
	Node        string
	Ready       bool
	Serving     bool
	Terminating bool
}

// Runtime is what a speaker's Go runtime reports.
type Runtime struct {
	Goroutines float64
	// HeapInuse is the in-use heap after a forced GC (GCForced), or the
	// smaller of two readings.
	HeapInuse float64
	GCForced  bool
}

// FaultKind names a fault.
type FaultKind string

// Faults. Target is a node name, except for the ToR faults (a ToR name) and
// FaultAPIServerDown and FaultControllerRestart (none).
const (
	// FaultSpeakerFreeze stops the node's speaker with SIGSTOP (a hung
	// process); Repair thaws it (SIGCONT).
	FaultSpeakerFreeze FaultKind = "freeze-speaker"
	// FaultLinkCut takes the node's links down on the node side: it falls
	// silent (no FIN, no NOTIFICATION, no BFD, no ARP). On a topology with
	// an L2 segment that is both its links unless Fault.Link names one.
	// Repair brings them up.
	FaultLinkCut FaultKind = "cut-link"
	// FaultToRDown freezes a ToR and takes its link down; Repair undoes it.
	FaultToRDown FaultKind = "tor-down"
	// FaultToRRestart restarts a ToR's router gracefully; returns when the
	// new process answers. Its history starts afresh.
	FaultToRRestart FaultKind = "tor-restart"
	// FaultBFDFlap mutes the BFD transmission of ToR (or every BFD ToR) to
	// the node for Duration; returns after the flap.
	FaultBFDFlap FaultKind = "bfd-flap"
	// FaultBFDAdminDown shuts the BFD session of ToR (or every BFD ToR) to
	// the node down administratively; Repair enables it.
	FaultBFDAdminDown FaultKind = "bfd-admin-down"
	// FaultSpeakerRestart stops the node's speaker gracefully and starts it
	// again; the returned time is the start of the new process.
	FaultSpeakerRestart FaultKind = "restart-speaker"
	// FaultControllerRestart restarts the controller.
	FaultControllerRestart FaultKind = "restart-controller"
	// FaultAPIServerDown stops kube-apiserver (etcd keeps running); Repair
	// starts it again.
	FaultAPIServerDown FaultKind = "apiserver-down"
	// FaultNodeFreeze freezes the whole node: every process of it stops
	// (kind: `docker pause` of the node container; lab: SIGSTOP of every
	// process in the node's network namespace) while its kernel still
	// answers. Repair thaws it.
	FaultNodeFreeze FaultKind = "freeze-node"
	// FaultNodeDrain drains the node as `kubectl drain` does: it is cordoned
	// and its pods (DaemonSets' aside) are evicted, so the endpoints on it
	// leave. Repair uncordons it; evicted pods do not come back by
	// themselves.
	FaultNodeDrain FaultKind = "drain-node"
)

// FaultKinds lists every fault kind.
var FaultKinds = []FaultKind{FaultSpeakerFreeze, FaultLinkCut, FaultToRDown, FaultToRRestart, FaultBFDFlap,
	FaultBFDAdminDown, FaultSpeakerRestart, FaultControllerRestart, FaultAPIServerDown, FaultNodeFreeze, FaultNodeDrain}

// TargetsToR reports whether the fault's target is a ToR.
func (k FaultKind) TargetsToR() bool { return k == FaultToRDown || k == FaultToRRestart }

// TargetsNode reports whether the fault's target is a node.
func (k FaultKind) TargetsNode() bool {
	switch k {
	case FaultSpeakerFreeze, FaultLinkCut, FaultBFDFlap, FaultBFDAdminDown, FaultSpeakerRestart, FaultNodeFreeze, FaultNodeDrain:
		return true
	}
	return false
}

// Lasts reports whether the fault stays until it is repaired; the others
// (restarts, a timed BFD flap) end by themselves.
func (k FaultKind) Lasts() bool {
	switch k {
	case FaultSpeakerFreeze, FaultLinkCut, FaultToRDown, FaultBFDAdminDown, FaultAPIServerDown, FaultNodeFreeze, FaultNodeDrain:
		return true
	}
	return false
}

// Fault is one fault to inject or repair.
type Fault struct {
	Kind FaultKind
	// Target is the node or ToR.
	Target string
	// ToR limits the BFD faults to one ToR (empty: every BFD ToR).
	ToR string
	// Duration is the mute time of FaultBFDFlap.
	Duration time.Duration
	// Link limits FaultLinkCut to one link of a node with two (LinkSegment
	// or LinkL2, on a topology with an L2 segment); empty: every link.
	Link string
}

func (f Fault) String() string {
	s := string(f.Kind)
	if f.Target != "" {
		s += " " + f.Target
	}
	if f.ToR != "" {
		s += " on " + f.ToR
	}
	if f.Duration > 0 {
		s += " for " + f.Duration.String()
	}
	if f.Link != "" {
		s += " (" + f.Link + " link)"
	}
	return s
}

// ServiceEvent is one Kubernetes Event about a Service.
type ServiceEvent struct {
	// Type is "Normal" or "Warning".
	Type    string
	Reason  string
	Message string
	// Count is how many times it happened; Last when it last did.
	Count int32
	Last  time.Time
}

// EventReader is implemented by backends that can read a Service's Events
// (both do; it is its own interface so a third backend can come without).
type EventReader interface {
	// ServiceEvents lists the Events whose object is the Service.
	ServiceEvents(ctx context.Context, namespace, name string) ([]ServiceEvent, error)
}

// Tolerances of RuntimeOff: 5 % of the baseline plus an absolute slack.
// Goroutines: 4 more or fewer, for the metrics scrape's own connection and
// timers or retries that happen to be in flight at the reading. Heap after
// a forced GC: 1 MiB for allocator granularity (partly used spans count
// whole) and per-P caches; without a forced GC (a speaker without
// --pprof-addr) the reading includes garbage up to GOGC's 100 %: 4 MiB.
const (
	GoroutineSlack = 4
	HeapSlackGC    = 1 << 20
	HeapSlackNoGC  = 4 << 20
)

// RuntimeOff says how a speaker's runtime reading now is off its baseline
// (nil: within tolerance): goroutines more than 5 % + GoroutineSlack away,
// or in-use heap above 105 % + the heap slack.
func RuntimeOff(node string, baseline, now Runtime) error {
	var errs []error
	gTol := 0.05*baseline.Goroutines + GoroutineSlack
	if d := now.Goroutines - baseline.Goroutines; d > gTol || -d > gTol {
		errs = append(errs, fmt.Errorf("speaker on %s: %.0f goroutines, baseline %.0f (tolerance ±%.0f)", node, now.Goroutines, baseline.Goroutines, gTol))
	}
	slack := float64(HeapSlackGC)
	if !now.GCForced {
		slack = HeapSlackNoGC
	}
	if limit := 1.05*baseline.HeapInuse + slack; now.HeapInuse > limit {
		errs = append(errs, fmt.Errorf("speaker on %s: heap in use %.1f MiB, baseline %.1f MiB (limit %.1f MiB, GC forced: %v)",
			node, now.HeapInuse/(1<<20), baseline.HeapInuse/(1<<20), limit/(1<<20), now.GCForced))
	}
	return errors.Join(errs...)
}

// Streamer is implemented by backends that can hold a steady stream open
// across a scenario's steps (both do; see package stream).
type Streamer interface {
	// StartStream makes every node answer a stream on dst (proto "tcp") and
	// opens cfg.Connections connections to it from the first client, each
	// answered once; the stream's Stop closes them and undoes the set-up.
	StartStream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error)
}

// EndpointsTimer is implemented by backends whose SetEndpointStates does
// more than write the endpoints (kind starts and stops pods):
// SetEndpointStatesAt also returns when the Service's EndpointSlices
// changed, where a timed expectation after an endpoints step starts.
type EndpointsTimer interface {
	SetEndpointStatesAt(ctx context.Context, namespace, service string, eps ...Endpoint) (time.Time, error)
}

// FabricFault is the fault of the fabric's ToRs that f is, for a backend
// whose ToRs are the fabric's (both are): ToR down and restart, the BFD
// flap and administrative down. ok is false for the other kinds, which a
// backend injects itself.
func FabricFault(f Fault) (_ fabric.Fault, ok bool) {
	kinds := map[FaultKind]fabric.FaultKind{
		FaultToRDown:      fabric.FaultToRDown,
		FaultToRRestart:   fabric.FaultToRRestart,
		FaultBFDFlap:      fabric.FaultBFDFlap,
		FaultBFDAdminDown: fabric.FaultBFDAdminDown,
	}
	k, ok := kinds[f.Kind]
	if !ok {
		return fabric.Fault{}, false
	}
	return fabric.Fault{Kind: k, Target: f.Target, ToR: f.ToR, Duration: f.Duration}, true
}
