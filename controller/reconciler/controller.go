// Package reconciler is the controller's imperative shell: it feeds
// Services, Namespaces and IPAddressPools from the API server into the
// allocator, writes Service and pool status, and emits Events.
//
// Ordering guarantees: allocations are rebuilt from a live List of every
// Service (after leadership is acquired) before any reconcile runs, so an
// IP held by a Service is never handed to another one across restarts and
// leader changes. Services whose status already matches their allocation
// cost no API call.
package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/controller/metrics"
	"github.com/ecmplb/ecmplb/internal/configstate"
)

// Event reasons.
const (
	ReasonIPAllocated      = "IPAllocated"
	ReasonIPReleased       = "IPReleased"
	ReasonAllocationFailed = "AllocationFailed"
	ReasonInvalidRequest   = "InvalidRequest"
	ReasonIPNotInPool      = "IPNotInPool"
	ReasonInvalidConfig    = "InvalidConfig"
	ReasonOutsidePool      = "AllocationsOutsidePool"
	ReasonPoolAccepted     = "Accepted"
)

// Pool condition types.
const (
	ConditionValid         = "Valid"
	ConditionOutsidePool   = "AllocationsOutsidePool"
	conditionReasonOK      = "Accepted"
	conditionReasonNone    = "NoneOutside"
	conditionReasonOutside = "IPsOutsidePool"
)

// Options configure the controller.
type Options struct {
	// PoolNamespace is the namespace whose IPAddressPools are used.
	PoolNamespace string
	// LoadBalancerClass: handle only Services of this class; "" means only
	// Services without a class.
	LoadBalancerClass string
	// Workers is the number of parallel Service reconciles.
	Workers int
	// StatusInterval is how often pool status is written at most.
	StatusInterval time.Duration
	// PoolAnnotation writes metallb.io/ip-allocated-from-pool on Services.
	PoolAnnotation bool
	// ConfigurationState writes the ConfigurationState "controller" in
	// PoolNamespace: whether the IPAddressPools loaded, and which were
	// rejected and why.
	ConfigurationState bool
	// ConfigurationStateOwner, if set, gives the ownerReference of the
	// ConfigurationState when it is created (see configstate.DeploymentOwner).
	ConfigurationStateOwner func(context.Context) (*metav1.OwnerReference, error)
	// Logger receives structured logs.
	Logger *slog.Logger
	// Metrics receives counters and gauges.
	Metrics *metrics.Metrics
	// Recorder receives Events (default: the manager's recorder).
	Recorder record.EventRecorder
	// Writing, if set, is called as a write to a Service begins, and the
	// function it returns when the write has ended; an allocation's Event
	// is recorded within its write's span. The Event sink holds Events
	// while writes are in flight (package eventgate).
	Writing func() (done func())
	// SkipNameValidation allows several controllers in one process (tests).
	SkipNameValidation bool
	// LeaseName is the leader-election Lease (in PoolNamespace), "" without
	// leader election. With it, a rebuild may read the Services from the
	// informer cache instead of listing them again.
	LeaseName string
}

// Controller allocates Service IPs.
type Controller struct {
	opts     Options
	client   client.Client // cached reads, writes
	reader   client.Reader // live reads
	cache    cache.Cache
	recorder record.EventRecorder
	alloc    *allocator.Allocator
	log      *slog.Logger
	m        *metrics.Metrics

	ready       chan struct{}
	svcEvents   chan event.GenericEvent
	poolEvents  chan event.GenericEvent
	flushSignal chan struct{}
	retrySignal chan struct{}

	mu       sync.Mutex
	pending  map[string]string   // Service key -> namespace, allocation failed
	failure  map[string]string   // Service key -> last failure reported
	reported map[string]string   // Service key -> last out-of-pool report
	dirty    map[string]struct{} // pools whose status needs writing
	poolErr  map[string]string   // pool -> config error ("" when valid)
	written  map[string]Written  // Service key -> own writes the cache has not shown yet
	// annotateApart: this apiserver dropped the pool annotation from a
	// status write, so it is written with a patch of its own (writeShape).
	annotateApart atomic.Bool

	cfgState *configstate.Writer // nil: not written

	storeMu sync.Mutex
	store   toolscache.Store // the Service informer's, once looked up
}

// writing marks a write to a Service in flight until done is called.
func (c *Controller) writing() (done func()) {
	if c.opts.Writing == nil {
		return func() {}
	}
	return c.opts.Writing()
}

// Allocator exposes the allocator (for tests and diagnostics).
func (c *Controller) Allocator() *allocator.Allocator { return c.alloc }

// Ready is closed once allocations have been rebuilt.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Setup creates the controller and registers its controllers and runnables
// with mgr. The manager's cache must have the Service, Namespace (metadata)
// and IPAddressPool types available.
func Setup(mgr manager.Manager, opts Options) (*Controller, error) {
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PoolNamespace == "" {
		return nil, fmt.Errorf("reconciler: Options.PoolNamespace is required")
	}
	if opts.Metrics == nil {
		return nil, fmt.Errorf("reconciler: Options.Metrics is required")
	}
	if opts.Recorder == nil {
		opts.Recorder = mgr.GetEventRecorderFor("ecmplb-controller")
	}
	c := &Controller{
		opts:        opts,
		client:      mgr.GetClient(),
		reader:      mgr.GetAPIReader(),
		cache:       mgr.GetCache(),
		recorder:    opts.Recorder,
		alloc:       allocator.New(),
		log:         opts.Logger,
		m:           opts.Metrics,
		ready:       make(chan struct{}),
		svcEvents:   make(chan event.GenericEvent, 1024),
		poolEvents:  make(chan event.GenericEvent, 64),
		flushSignal: make(chan struct{}, 1),
		retrySignal: make(chan struct{}, 1),
		pending:     map[string]string{},
		failure:     map[string]string{},
		reported:    map[string]string{},
		dirty:       map[string]struct{}{},
		poolErr:     map[string]string{},
		written:     map[string]Written{},
	}
	// The allocator is the source of truth for the pool gauges, read at scrape.
	opts.Metrics.SetPools(c.alloc)
	// Services that wait for an IP go before settled ones (ServicePriority),
	// and both kinds enter the queue a window at a time (queueWindow).
	usePriorityQueue := true
	err := builder.ControllerManagedBy(mgr).
		Named("service").
		Watches(&corev1.Service{}, c.serviceEvents()).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(c.pendingInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(source.Channel(c.svcEvents, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers, SkipNameValidation: &opts.SkipNameValidation,
			UsePriorityQueue: &usePriorityQueue, NewQueue: newServiceQueue(2*opts.Workers, opts.Metrics.SetHeld)}).
		Complete(c.counted(c.reconcileService))
	if err != nil {
		return nil, fmt.Errorf("service controller: %w", err)
	}
	err = builder.ControllerManagedBy(mgr).
		Named("ipaddresspool").
		For(&v1beta1.IPAddressPool{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(c.poolEvents, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{SkipNameValidation: &opts.SkipNameValidation}).
		Complete(c.counted(c.reconcilePool))
	if err != nil {
		return nil, fmt.Errorf("pool controller: %w", err)
	}
	if opts.ConfigurationState {
		obj := configstate.Controller()
		obj.ResolveOwner = opts.ConfigurationStateOwner
		c.cfgState = configstate.NewWriter(stateAPI{reader: c.reader, client: c.client, namespace: opts.PoolNamespace},
			obj, configstate.WithLogger(opts.Logger.With("component", "configurationstate")))
		// Leader only, like every other write.
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { c.cfgState.Run(ctx); return nil })); err != nil {
			return nil, err
		}
	}
	if err := mgr.Add(manager.RunnableFunc(c.rebuild)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(c.flushLoop)); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(c.retryLoop)); err != nil {
		return nil, err
	}
	return c, nil
}

// counted counts each reconcile as a processed update, and a failed one as
// an update error (MetalLB's metallb_k8s_client_* counters).
func (c *Controller) counted(f reconcile.Func) reconcile.Func {
	return func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := f(ctx, req)
		c.m.Updates.Inc()
		if err != nil {
			c.m.UpdateErrors.Inc()
		}
		return res, err
	}
}

// waitReady blocks a reconcile until the rebuild is done.
func (c *Controller) waitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Controller) markDirty(pools ...string) {
	c.mu.Lock()
	for _, p := range pools {
		if p != "" {
			c.dirty[p] = struct{}{}
		}
	}
	c.mu.Unlock()
}

// setPending records (msg != "") or clears (msg == "") a Service's failed
// allocation. It reports whether msg is new for that Service, so a
// Service retried after every pool change or release is not re-reported
// with the same Event each time.
func (c *Controller) setPending(key, ns, msg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if msg == "" {
		delete(c.pending, key)
		delete(c.failure, key)
		return false
	}
	c.pending[key] = ns
	if c.failure[key] == msg {
		return false
	}
	c.failure[key] = msg
	return true
}

// retryPending asks for every waiting Service to be retried soon; bursts of
// requests (many releases) coalesce into one pass.
func (c *Controller) retryPending() {
	select {
	case c.retrySignal <- struct{}{}:
	default:
	}
}

// retryLoop runs the coalesced retries, at most one pass per 100 ms.
func (c *Controller) retryLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.retrySignal:
		}
		c.requeuePending()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// requeuePending re-enqueues every Service whose allocation failed (after a
// pool change or a release could have made room).
func (c *Controller) requeuePending() {
	c.mu.Lock()
	var objs []*corev1.Service
	for key, ns := range c.pending {
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key[len(ns)+1:]}})
	}
	c.mu.Unlock()
	for _, o := range objs {
		c.svcEvents <- event.GenericEvent{Object: o}
	}
}

func (c *Controller) pendingInNamespace(_ context.Context, ns client.Object) []reconcile.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []reconcile.Request
	for key, n := range c.pending {
		if n == ns.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: n, Name: key[len(n)+1:]}})
		}
	}
	return out
}

// stateAPI is configstate.API over the manager's clients: reads go to the
// apiserver (the cache does not hold ConfigurationStates), writes as usual.
type stateAPI struct {
	reader    client.Reader
	client    client.Client
	namespace string
}

func (a stateAPI) Get(ctx context.Context, name string) (*v1beta1.ConfigurationState, error) {
	o := &v1beta1.ConfigurationState{}
	return o, a.reader.Get(ctx, client.ObjectKey{Namespace: a.namespace, Name: name}, o)
}

func (a stateAPI) Create(ctx context.Context, o *v1beta1.ConfigurationState) (*v1beta1.ConfigurationState, error) {
	o = o.DeepCopy()
	o.Namespace = a.namespace
	return o, a.client.Create(ctx, o, client.FieldOwner(FieldManager))
}

func (a stateAPI) UpdateStatus(ctx context.Context, o *v1beta1.ConfigurationState) error {
	return a.client.Status().Update(ctx, o.DeepCopy(), client.FieldOwner(FieldManager))
}
