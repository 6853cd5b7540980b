package mode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness/lease"
	"github.com/ecmplb/ecmplb/speaker/l2/responder"
)

// Responder is the data plane: *responder.Responder.
type Responder interface {
	// Set makes ips the IPs answered on ifName; it keeps retrying by
	// itself what fails.
	Set(ifName string, ips []netip.Addr) error
	// Answering returns what is answered on ifName now (read back).
	Answering(ifName string) []netip.Addr
}

// Heartbeat moves the heartbeats: *heartbeat.Heartbeat, created with
// Config.Echoed set to the Runtime's Echoed.
type Heartbeat interface {
	SetPeers(peers []heartbeat.Peer)
	Run(ctx context.Context, heard func(node string, at time.Time)) error
	Receiving() bool
	// SetRenewing sets what this node's heartbeats tell the others of its
	// Lease renewals.
	SetRenewing(ok bool)
}

// LeaseOptions configure the fencing by Leases (see the package doc).
type LeaseOptions struct {
	// Leases are those of Namespace (lease.NewREST).
	Leases    lease.Leases
	Namespace string
	// Period is how often this node renews its Lease, and Liveness the
	// Lease table's timings (DefaultLeaseLiveness).
	Period   time.Duration
	Liveness liveness.Config
}

// DefaultLeasePeriod is how often a speaker renews its Lease: 50 writes/s at
// 100 nodes, which leasebench measured at 0.44 apiserver cores with a
// delivery p99 of 91 ms (package liveness).
const DefaultLeasePeriod = 2 * time.Second

// DefaultLeaseLiveness returns the Lease table's timings for a renewal every
// period: down after 5 periods of silence; this node answers until 4.5
// periods after its last renewal the apiserver accepted (Margin: half a
// period, above the largest delivery leasebench saw at 2 s, 281 ms); no
// flap damping (the heartbeats damp).
func DefaultLeaseLiveness(period time.Duration) liveness.Config {
	if period <= 0 {
		period = DefaultLeasePeriod
	}
	return liveness.Config{Threshold: 5 * period, Margin: period / 2, MaxTickGap: period / 2}
}

// StatusSink takes, per Service, whether this node announces it in layer 2
// mode and on which interfaces (the ServiceL2Status writer). It is told
// only of changes; a Service never reported is not announced here.
type StatusSink interface {
	SetL2(key string, interfaces []string, announced bool)
}

// EventSink records a Normal Event on the Service key (namespace/name).
type EventSink interface {
	ServiceEvent(key, reason, message string)
}

// Event reasons. ReasonNodeAssigned and its message are MetalLB's.
const (
	ReasonNodeAssigned   = "nodeAssigned"
	ReasonNodeUnassigned = "nodeUnassigned"
)

// DefaultResync is how often the interfaces are listed again and what the
// responder answers is read back.
const DefaultResync = 2 * time.Second

// recheck is how soon what the responder answers is read back again while
// it is still converging.
const recheck = 250 * time.Millisecond

// Options configure a Runtime.
type Options struct {
	// Node is this node's name.
	Node string
	// Liveness holds the heartbeat timings every speaker shares
	// (DefaultLiveness).
	Liveness  liveness.Config
	Responder Responder
	// Heartbeat, nil: none (this node hears no one, and answers alone).
	Heartbeat Heartbeat
	Status    StatusSink // optional
	Events    EventSink  // optional
	// Lease, nil: no fencing by Leases.
	Lease *LeaseOptions
	// Interfaces lists this node's interfaces (nil: HostInterfaces).
	Interfaces func() ([]Link, error)
	// Resync: how often the interfaces are listed again (0: DefaultResync).
	Resync     time.Duration
	Clock      bfd.Clock // nil: real time
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
	// OnSettled, if set, is called once, from Run's goroutine, when this
	// node has made its first choice with every input (InputsSynced was
	// called and the start-up hold is over) and told the status sink of the
	// Services it answers for: the status writer's start-up cleanup may run
	// from then on without deleting true objects.
	OnSettled func()
}

// DefaultLiveness returns the heartbeat liveness timings for a heartbeat
// sent every interval (see the package doc for why these).
func DefaultLiveness(interval time.Duration) liveness.Config {
	if interval <= 0 {
		interval = heartbeat.DefaultInterval
	}
	return liveness.Config{
		Threshold:  6 * interval,
		Rejoin:     10 * interval,
		Margin:     interval,
		MaxTickGap: 2 * interval,
	}
}

// Runtime runs layer 2 mode on one node: it takes the Services and Nodes
// from the watch (ApplyL2, SetL2Nodes), the heartbeats (Heartbeat.Run, and
// Echoed), decides what this node answers and converges the responder, the
// status and the Events to it. Create it with New and run it with Run.
type Runtime struct {
	o   Options
	log *slog.Logger
	m   *metrics

	wake chan struct{}
	// gate: unix nanoseconds until which answers may go out (Gate).
	gate atomic.Int64

	mu       sync.Mutex
	services map[string]*announce.L2Service
	nodes    []announce.L2Node
	svcDirty bool
	nodesNew bool
	receipts []receipt
	echo     time.Time
	synced   bool
	lease    *liveness.View
	// renewing: per other node, the latest state bit heard and when.
	renewing map[string]peerState
}

type peerState struct {
	ok bool
	at time.Time
}

type receipt struct {
	node string
	at   time.Time
}

// New checks o and returns a Runtime.
func New(o Options) (*Runtime, error) {
	if o.Node == "" {
		return nil, errors.New("l2 mode: node name is required")
	}
	if o.Responder == nil {
		return nil, errors.New("l2 mode: a responder is required")
	}
	if err := o.Liveness.Validate(); err != nil {
		return nil, fmt.Errorf("l2 mode: %w", err)
	}
	if l := o.Lease; l != nil {
		if err := l.Liveness.Validate(); err != nil {
			return nil, fmt.Errorf("l2 mode: leases: %w", err)
		}
		if l.Leases == nil || l.Period <= 0 || l.Period >= l.Liveness.Threshold {
			return nil, fmt.Errorf("l2 mode: leases: a client and a period below the threshold %v are required", l.Liveness.Threshold)
		}
	}
	if o.Interfaces == nil {
		o.Interfaces = HostInterfaces
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Clock == nil {
		o.Clock = bfd.RealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Runtime{o: o, log: o.Logger, m: m, wake: make(chan struct{}, 1), services: map[string]*announce.L2Service{},
		renewing: map[string]peerState{}}, nil
}

func (r *Runtime) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// ApplyL2 sets the layer 2 announcement of Service key (nil: none). svc is
// not modified, and must not be after the call. It never blocks on the
// network.
func (r *Runtime) ApplyL2(key string, svc *announce.L2Service) {
	r.mu.Lock()
	if svc == nil {
		delete(r.services, key)
	} else {
		r.services[key] = svc
	}
	r.svcDirty = true
	r.mu.Unlock()
	r.poke()
}

// SetL2Nodes sets every Node of the cluster with its addresses: the
// possible answering nodes and where heartbeats go.
func (r *Runtime) SetL2Nodes(nodes []announce.L2Node) {
	r.mu.Lock()
	r.nodes, r.nodesNew = slices.Clone(nodes), true
	r.mu.Unlock()
	r.poke()
}

// Echoed records that node received this node's heartbeat sent at sent
// (heartbeat.Config.Echoed).
func (r *Runtime) Echoed(node string, sent time.Time) {
	r.mu.Lock()
	if sent.After(r.echo) {
		r.echo = sent
	}
	r.mu.Unlock()
	r.poke()
}

// PeerState records another node's state bit (heartbeat.Config.PeerState):
// whether its Lease renewals work.
func (r *Runtime) PeerState(node string, renewing bool, at time.Time) {
	r.mu.Lock()
	r.renewing[node] = peerState{renewing, at}
	r.mu.Unlock()
}

func (r *Runtime) leaseView(v liveness.View) {
	r.mu.Lock()
	r.lease = &v
	r.mu.Unlock()
	r.poke()
}

// Gate reports whether answers may go out now: give it to the responder
// (responder.Options.Gate). It closes at this node's fence deadline
// (liveness.View.AnswerUntil), and MaxTickGap after the loop last ran, so a
// process that was frozen answers nothing when it thaws until its loop has
// decided again.
func (r *Runtime) Gate() bool { return time.Now().UnixNano() < r.gate.Load() }

// InputsSynced says that every Service and Node has been given (the watch's
// first pass is over): see Options.OnSettled.
func (r *Runtime) InputsSynced() {
	r.mu.Lock()
	r.synced = true
	r.mu.Unlock()
	r.poke()
}

func (r *Runtime) heard(node string, at time.Time) {
	r.mu.Lock()
	r.receipts = append(r.receipts, receipt{node, at})
	r.mu.Unlock()
	r.poke()
}

// state is the loop's own: only Run's goroutine touches it.
type state struct {
	table              *liveness.Table
	started, lastHeard time.Time
	dec                Decision
	services           []*announce.L2Service // by key
	// peers are the other nodes' heartbeat addresses; peersSent what the
	// heartbeat was last given (nil at first: it starts with none).
	peers, peersSent []heartbeat.Peer
	// startLeases starts the Lease renewals and watch (once; nil in tests
	// that step the runtime themselves).
	startLeases func()
	byKey       map[string]*announce.L2Service
	nodes       map[string]bool
	links       []string // eligible interfaces
	nextResync  time.Time
	nextCheck   time.Time // next read-back while pending
	plan        Plan
	applied     map[string][]netip.Addr // what the responder was told
	mine        map[string]bool         // Services this node answers for (wanted)
	reported    map[string]reported     // status told to the sink
	pending     bool                    // the responder is still converging
	settled     bool                    // OnSettled was called
}

type reported struct {
	interfaces []string
	announced  bool
}

// Run runs the heartbeat and converges until ctx ends; then this node stops
// answering (without announcing anything) and Run returns once every
// goroutine it started has.
func (r *Runtime) Run(ctx context.Context) error {
	s, err := r.newState()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if hb := r.o.Heartbeat; hb != nil {
		wg.Go(func() {
			if err := hb.Run(ctx, r.heard); err != nil {
				r.log.Error("l2 heartbeat", "err", err)
			}
		})
	}
	// The Leases start with the first Service announced in layer 2 mode: a
	// cluster that uses BGP only writes and watches none.
	s.startLeases = sync.OnceFunc(func() {
		l := r.o.Lease
		if l == nil {
			return
		}
		r.log.Info("l2 mode: a Service is announced in layer 2 mode; renewing this speaker's Lease")
		wg.Go(func() {
			err := lease.Run(ctx, lease.Options{Leases: l.Leases, Namespace: l.Namespace, Node: r.o.Node, Period: l.Period,
				Liveness: l.Liveness, Clock: r.o.Clock, Logger: r.log, OnView: r.leaseView})
			if err != nil {
				r.log.Error("l2 leases", "err", err)
			}
		})
	})
	timer := r.o.Clock.AfterFunc(0, r.poke)
	defer timer.Stop()
	r.log.Info("l2 mode running", "node", r.o.Node, "threshold", r.o.Liveness.Threshold, "rejoin", r.o.Liveness.Rejoin)
	for {
		select {
		case <-ctx.Done():
			r.stop(s)
			return nil
		case <-r.wake:
		}
		next := r.step(s)
		timer.Reset(max(next.Sub(r.o.Clock.Now()), 0))
	}
}

func (r *Runtime) newState() (*state, error) {
	now := r.o.Clock.Now()
	table, err := liveness.New(r.o.Liveness, r.o.Node, now)
	if err != nil {
		return nil, err
	}
	return &state{table: table, started: now, byKey: map[string]*announce.L2Service{}, nodes: map[string]bool{},
		applied: map[string][]netip.Addr{}, mine: map[string]bool{}, reported: map[string]reported{}}, nil
}

// step takes the queued inputs, decides, converges, and returns when to
// run again without new input.
func (r *Runtime) step(s *state) time.Time {
	r.mu.Lock()
	receipts, echo := r.receipts, r.echo
	r.receipts = nil
	svcDirty, nodesNew := r.svcDirty, r.nodesNew
	var nodes []announce.L2Node
	if nodesNew {
		nodes = r.nodes
	}
	if svcDirty {
		s.byKey = maps.Clone(r.services)
	}
	r.svcDirty, r.nodesNew = false, false
	synced, leaseView := r.synced, r.lease
	var peerRenewing bool
	heardBy := r.o.Clock.Now().Add(-r.o.Liveness.Threshold)
	for n, st := range r.renewing {
		switch {
		case st.at.Before(heardBy):
			delete(r.renewing, n) // not heard lately: its word is stale
		case st.ok && n != r.o.Node:
			peerRenewing = true
		}
	}
	r.mu.Unlock()

	for _, rc := range receipts {
		s.table.Heard(rc.node, rc.at)
		if rc.at.After(s.lastHeard) {
			s.lastHeard = rc.at
		}
	}
	if !echo.IsZero() {
		s.table.Confirmed(echo)
	}
	if nodesNew {
		r.setNodes(s, nodes)
	}
	if svcDirty {
		s.services = slices.SortedFunc(maps.Values(s.byKey), func(a, b *announce.L2Service) int { return strings.Compare(a.Key, b.Key) })
		r.m.services.Set(float64(len(s.services)))
	}
	if svcDirty || nodesNew {
		r.updatePeers(s)
	}
	if len(s.services) > 0 && s.startLeases != nil {
		s.startLeases()
	}

	now := r.o.Clock.Now()
	linksChanged, readBack := false, false
	if !now.Before(s.nextResync) {
		linksChanged = r.listLinks(s)
		s.nextResync = now.Add(r.o.Resync)
		readBack = true
	}
	if s.pending && !now.Before(s.nextCheck) {
		readBack = true
	}
	v := s.table.Advance(now)
	if v.Jumped && !s.lastHeard.IsZero() {
		// This process paused: the others were not silent for its pause.
		s.lastHeard = now
		r.log.Warn("l2 mode: this speaker paused or its clock stepped; silences measured from now")
	}
	receiving := true // without a heartbeat this node hears no one, by design
	if r.o.Heartbeat != nil {
		receiving = r.o.Heartbeat.Receiving()
	}
	d := Decide(r.o.Liveness, Standing{Self: r.o.Node, View: v, Now: now, Started: s.started, LastHeard: s.lastHeard, Receiving: receiving,
		Lease: leaseView, PeerRenewing: peerRenewing, OthersExist: len(s.nodes) > 1 || len(s.nodes) == 1 && !s.nodes[r.o.Node]})
	if r.o.Heartbeat != nil && leaseView != nil {
		r.o.Heartbeat.SetRenewing(leaseView.Answer)
	}
	decChanged := d.Answer != s.dec.Answer || d.Alone != s.dec.Alone || d.LeaseFenced != s.dec.LeaseFenced || !slices.Equal(d.Alive, s.dec.Alive)
	if decChanged {
		r.logDecision(s.dec, d)
		if s.dec.Answer && !d.Answer {
			r.m.fenced.Inc()
		}
	}
	s.dec = d
	r.gate.Store(gateUntil(d, v, now, r.o.Liveness.MaxTickGap, r.o.Clock.Now()))
	r.m.answering.Set(b2f(d.Answer))
	r.m.alone.Set(b2f(d.Alone))
	r.m.alive.Set(float64(len(d.Alive)))

	settle := !s.settled && synced && !now.Before(s.started.Add(r.o.Liveness.Threshold+r.o.Liveness.Rejoin))
	if svcDirty || nodesNew || decChanged || linksChanged || settle {
		s.plan = Compute(Inputs{Self: r.o.Node, Services: s.services, Alive: d.Alive, Interfaces: s.links})
		r.m.computed.Inc()
		r.converge(s)
		readBack = true
	}
	if readBack {
		r.report(s)
		s.nextCheck = now.Add(recheck)
	}
	if settle {
		s.settled = true
		if r.o.OnSettled != nil {
			r.o.OnSettled()
		}
	}

	next := earliest(v.Next, d.Next)
	next = earliest(next, s.nextResync)
	if s.pending {
		next = earliest(next, s.nextCheck)
	}
	return next
}

func (r *Runtime) setNodes(s *state, nodes []announce.L2Node) {
	now := map[string]bool{}
	var peers []heartbeat.Peer
	for _, n := range nodes {
		now[n.Name] = true
		if n.Name == r.o.Node {
			continue
		}
		for _, a := range n.Addrs {
			peers = append(peers, heartbeat.Peer{Node: n.Name, Addr: a})
		}
	}
	for n := range s.nodes {
		if !now[n] {
			s.table.Forget(n)
		}
	}
	s.nodes, s.peers = now, peers
}

// updatePeers gives the heartbeat the other nodes while some Service is
// announced in layer 2 mode, and no one otherwise: a cluster that uses BGP
// only sends nothing between its nodes.
func (r *Runtime) updatePeers(s *state) {
	var want []heartbeat.Peer
	if len(s.services) > 0 {
		want = s.peers
	}
	if slices.Equal(want, s.peersSent) { // the heartbeat starts with none
		return
	}
	if len(s.peersSent) == 0 && len(want) > 0 {
		// The heartbeats start now: until now this node heard no one because
		// it asked no one, so silences count from now (it is not alone
		// before the others had Threshold to answer).
		s.lastHeard = r.o.Clock.Now()
	}
	s.peersSent = want
	if r.o.Heartbeat != nil {
		r.o.Heartbeat.SetPeers(want)
	}
}

// listLinks lists the eligible interfaces, and reports a change.
func (r *Runtime) listLinks(s *state) bool {
	links, err := r.o.Interfaces()
	if err != nil {
		r.log.Warn("l2 mode: listing interfaces", "err", err)
		return false
	}
	el := Eligible(links)
	if slices.Equal(el, s.links) {
		return false
	}
	r.log.Info("l2 mode: interfaces answering for Services without named interfaces", "interfaces", el)
	s.links = el
	return true
}

// converge tells the responder what s.plan wants answered, and records the
// Events of Services this node starts or stops answering for.
func (r *Runtime) converge(s *state) {
	ifs := slices.Sorted(maps.Keys(s.applied))
	for ifName := range s.plan.Answer {
		if _, ok := s.applied[ifName]; !ok {
			ifs = append(ifs, ifName)
		}
	}
	for _, ifName := range ifs {
		want := s.plan.Answer[ifName]
		if slices.Equal(want, s.applied[ifName]) {
			continue
		}
		// The responder keeps retrying what failed; the error is news only.
		if err := r.o.Responder.Set(ifName, want); err != nil && !errors.Is(err, responder.ErrClosed) {
			r.log.Warn("l2 mode: responder not converged yet; it retries", "interface", ifName, "err", err)
		}
		if len(want) == 0 {
			delete(s.applied, ifName)
		} else {
			s.applied[ifName] = want
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.plan.Serving)) {
		if !s.mine[key] {
			s.mine[key] = true
			r.event(key, ReasonNodeAssigned, fmt.Sprintf("announcing from node %q with protocol %q", r.o.Node, "layer2"))
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.mine)) {
		if _, ok := s.plan.Serving[key]; ok {
			continue
		}
		delete(s.mine, key)
		if _, exists := s.byKey[key]; !exists {
			continue // deleted, or no longer in layer 2 mode: nothing to say on it
		}
		why := fmt.Sprintf("now announced from node %q", s.plan.Owner[key])
		switch {
		case s.dec.LeaseFenced:
			why = "this node may not answer: its Lease renewals fail while other nodes' work (cut off from the apiserver)"
		case !s.dec.Answer:
			why = "this node may not answer: its heartbeats are not confirmed by the others"
		case s.plan.Owner[key] == "":
			why = "no eligible node is alive"
		}
		r.event(key, ReasonNodeUnassigned, fmt.Sprintf("no longer announcing from node %q with protocol %q: %s", r.o.Node, "layer2", why))
	}
	r.m.served.Set(float64(len(s.plan.Serving)))
}

func (r *Runtime) event(key, reason, msg string) {
	r.log.Info("l2 mode: "+msg, "service", key)
	if r.o.Events != nil {
		r.o.Events.ServiceEvent(key, reason, msg)
	}
}

// report reads back what the responder answers and tells the status sink of
// every Service whose announcement here changed: announced on the
// interfaces where every one of its IPs is answered.
func (r *Runtime) report(s *state) {
	answering := map[string]map[netip.Addr]bool{}
	got := func(ifName string) map[netip.Addr]bool {
		a, ok := answering[ifName]
		if !ok {
			a = map[netip.Addr]bool{}
			for _, ip := range r.o.Responder.Answering(ifName) {
				a[ip] = true
			}
			answering[ifName] = a
		}
		return a
	}
	s.pending = false
	for key, wanted := range s.plan.Serving {
		svc := s.byKey[key]
		var on []string
		for _, ifName := range wanted {
			a := got(ifName)
			if !slices.ContainsFunc(svc.IPs, func(ip netip.Addr) bool { return !a[ip.Unmap()] }) {
				on = append(on, ifName)
			}
		}
		if len(on) != len(wanted) {
			s.pending = true
		}
		r.tell(s, key, reported{on, len(on) > 0})
	}
	for key := range s.reported {
		if _, ok := s.plan.Serving[key]; !ok {
			r.tell(s, key, reported{})
		}
	}
}

func (r *Runtime) tell(s *state, key string, st reported) {
	old := s.reported[key]
	if old.announced == st.announced && slices.Equal(old.interfaces, st.interfaces) {
		return
	}
	if st.announced || len(st.interfaces) > 0 {
		s.reported[key] = st
	} else {
		delete(s.reported, key)
	}
	if r.o.Status != nil {
		r.o.Status.SetL2(key, st.interfaces, st.announced)
	}
}

// stop stops answering everywhere, without announcing anything.
func (r *Runtime) stop(s *state) {
	for ifName := range s.applied {
		if err := r.o.Responder.Set(ifName, nil); err != nil && !errors.Is(err, responder.ErrClosed) {
			r.log.Warn("l2 mode: stopping", "interface", ifName, "err", err)
		}
	}
	if s.dec.Answer {
		r.m.fenced.Inc()
	}
	r.m.answering.Set(0)
	r.m.served.Set(0)
	r.log.Info("l2 mode stopped", "node", r.o.Node, "services_answered", len(s.plan.Serving))
}

func (r *Runtime) logDecision(old, d Decision) {
	switch {
	case d.Answer && !old.Answer:
		r.log.Info("l2 mode: this speaker answers", "alone", d.Alone, "alive", d.Alive)
	case !d.Answer && old.Answer && d.LeaseFenced:
		r.log.Warn("l2 mode: this speaker stops answering: its Lease renewals fail while other speakers' work", "alive", d.Alive)
	case !d.Answer && old.Answer:
		r.log.Warn("l2 mode: this speaker stops answering: its heartbeats are not confirmed", "alive", d.Alive)
	default:
		r.log.Info("l2 mode: alive nodes changed", "alive", d.Alive, "alone", d.Alone)
	}
}

// gateUntil is the Gate's deadline, in unix nanoseconds of the real clock:
// the fence's deadline and MaxTickGap from now, whichever comes first
// (translated from the runtime's clock, which tests replace).
func gateUntil(d Decision, v liveness.View, now time.Time, maxGap time.Duration, clockNow time.Time) int64 {
	if !d.Answer {
		return 0
	}
	until := now.Add(maxGap)
	if !d.Alone && !v.AnswerUntil.IsZero() && v.AnswerUntil.Before(until) {
		until = v.AnswerUntil
	}
	return time.Now().Add(until.Sub(clockNow)).UnixNano()
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
