// Package status writes one ServiceBGPStatus object per announced Service and node,
// saying which peers carry the Service's routes (K8s), and in layer 2 mode one
// ServiceL2Status object per Service this node answers ARP/NDP for, saying on
// which interfaces (L2). Writes are asynchronous, coalesced
// per Service, done by a few workers at once (never two for one Service) and
// rate-limited by their own client, so a burst of announcements never waits for the
// API server and the routes never wait for the writes.
//
// The writer is level-triggered: Changed only wakes it, and for each Service it
// converges what the API server holds to what the Source says. A failed call is
// retried with exponential backoff, and what the API server holds is recorded only
// after a call succeeded. It lists this node's objects at start-up (retried until it
// works, so stale objects of an earlier life are deleted) and again every resync
// period, which also repairs objects changed or deleted behind its back.
package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// Status is what is recorded for one Service on one node.
type Status struct {
	Peers            []string // BGPPeers the routes are announced to
	Prefixes         []string
	EstablishedPeers []string // of Peers, those with an established session
	// Interfaces are the interfaces answering for the Service in layer 2
	// mode (ServiceL2Status; empty: all).
	Interfaces []string
}

// digest identifies a Status: FNV-128a over its lists, each element and each
// list terminated by a byte no name or prefix holds.
type digest [16]byte

func (s Status) digest() digest {
	h := fnv.New128a()
	for _, l := range [][]string{s.Peers, s.Prefixes, s.EstablishedPeers, s.Interfaces} {
		for _, e := range l {
			h.Write([]byte(e))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	var d digest
	h.Sum(d[:0])
	return d
}

// Source returns the current status of a Service key ("namespace/name"); false
// means the Service is not announced from this node (its object is deleted).
type Source func(key string) (Status, bool)

// Writer is told which Services' status may have changed.
type Writer interface {
	// Changed marks one Service for a status write.
	Changed(key string)
	// ChangedAll marks every Service that has or had a status (session up/down).
	ChangedAll()
}

// Defaults of the writer's options.
const (
	DefaultBackoffBase = 250 * time.Millisecond
	DefaultBackoffMax  = 2 * time.Minute
	DefaultResync      = 10 * time.Minute
	// DefaultWorkers is how many objects are written at once: enough to keep
	// up with a burst of 10,000 announcements (the API server's latency, not
	// the client, bounds one worker to a few hundred calls a second).
	DefaultWorkers = 8
)

// kind is what differs between the objects a writer keeps.
type kind struct {
	name     string // ServiceBGPStatus
	resource string // servicebgpstatuses
	// items decodes a List's response; one the response of a write.
	items func(rest.Result) ([]item, error)
	one   func(rest.Result) (item, error)
	// object is a new object with this metadata and status.
	object func(m metav1.ObjectMeta, node, ns, svc string, st Status) runtime.Object
	// patch is the merge patch of an object's whole status.
	patch func(node, ns, svc string, st Status) any
	// subresource: the kind's CRD, as ecmplb ships it, has a status
	// subresource (create drops the status; it is written through
	// .../status). The writer starts from this and follows what the API
	// server answers (a CRD installed by someone else may differ).
	subresource bool
	// exclusive: one node at a time holds a Service's object (layer 2 mode's
	// answering node); a node that creates its object deletes the other
	// nodes' (one that failed cannot delete its own).
	exclusive bool
}

// item is one listed object.
type item struct {
	name, node, ns, svc string
	labels              map[string]string
	complete            bool // its status was written
	st                  Status
}

var bgpKind = kind{
	name: "ServiceBGPStatus", resource: "servicebgpstatuses",
	items: func(r rest.Result) ([]item, error) {
		var list v1beta1.ServiceBGPStatusList
		if err := r.Into(&list); err != nil {
			return nil, err
		}
		out := make([]item, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, bgpItem(&list.Items[i]))
		}
		return out, nil
	},
	one: func(r rest.Result) (item, error) {
		var o v1beta1.ServiceBGPStatus
		if err := r.Into(&o); err != nil {
			return item{}, err
		}
		return bgpItem(&o), nil
	},
	object: func(m metav1.ObjectMeta, node, ns, svc string, st Status) runtime.Object {
		return &v1beta1.ServiceBGPStatus{TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceBGPStatus"}, ObjectMeta: m,
			Status: v1beta1.ServiceBGPStatusStatus{Node: node, ServiceName: svc, ServiceNamespace: ns,
				Peers: nilIfEmpty(st.Peers), Prefixes: nilIfEmpty(st.Prefixes), EstablishedPeers: nilIfEmpty(st.EstablishedPeers)}}
	},
	patch: func(node, ns, svc string, st Status) any {
		var p bgpPatch
		p.Status.Node, p.Status.ServiceName, p.Status.ServiceNamespace = node, svc, ns
		p.Status.Peers, p.Status.Prefixes, p.Status.EstablishedPeers = nilIfEmpty(st.Peers), nilIfEmpty(st.Prefixes), nilIfEmpty(st.EstablishedPeers)
		return &p
	},
}

func bgpItem(o *v1beta1.ServiceBGPStatus) item {
	return item{name: o.Name, labels: o.Labels, node: o.Status.Node, ns: o.Status.ServiceNamespace, svc: o.Status.ServiceName,
		complete: o.Status.Node != "", st: Status{Peers: o.Status.Peers, Prefixes: o.Status.Prefixes, EstablishedPeers: o.Status.EstablishedPeers}}
}

// listKey is the queue item that lists this node's objects. Service keys always
// hold a "/", so it is never one of them.
const listKey = ""

// Option tunes NewK8s.
type Option func(*options)

type options struct {
	reg                  prometheus.Registerer
	backoffBase, backoff time.Duration
	resync               time.Duration
	ready                <-chan struct{}
	workers              int
}

// WithRegisterer registers the writer's metrics (ecmplb_speaker_status_write_errors_total).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithBackoff sets the first and the longest delay before a failed call is retried
// (defaults DefaultBackoffBase and DefaultBackoffMax); the delay doubles with each
// failure of the same Service.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoff = base, max }
}

// WithWorkers sets how many Services' objects are written concurrently
// (default DefaultWorkers; at least 1).
func WithWorkers(n int) Option {
	return func(o *options) { o.workers = max(n, 1) }
}

// WithResync sets how often this node's objects are listed again and compared with
// the Source (default DefaultResync; 0: only at start-up).
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithStartAfter makes Run wait until ready is closed before it lists or
// writes anything: until the Source has computed the node's announcements
// once, it reports every Service as not announced, and the start-up cleanup
// would delete objects that are still true (and then create them again).
func WithStartAfter(ready <-chan struct{}) Option { return func(o *options) { o.ready = ready } }

// held is what the API server holds for one Service, as far as the writer knows:
// a digest of the status (16 bytes, where the status itself takes about 200 at
// 10,000s of Services).
type held struct {
	sum digest
	// complete is false for an object whose status was never written (created,
	// then the status write failed).
	complete bool
	// alone: the other nodes' objects of the Service are deleted (always true
	// for a kind that is not exclusive; for one listed at start-up, assumed
	// done in the earlier life that created it).
	alone bool
}

// K8s writes ServiceBGPStatus objects in a namespace (and, inside an L2Writer,
// ServiceL2Status objects).
type K8s struct {
	kind      kind
	client    rest.Interface
	namespace string
	node      string
	source    Source
	log       *slog.Logger
	resync    time.Duration
	ready     <-chan struct{}
	workers   int
	errs      *prometheus.CounterVec

	q  workqueue.TypedRateLimitingInterface[string]
	rl workqueue.TypedRateLimiter[string] // q's, also for the start-up List
	// listMu keeps a List from running beside status writes: the List
	// replaces what the writer knows (written), which must not lose what a
	// concurrent write records.
	listMu sync.RWMutex

	mu      sync.Mutex
	written map[string]held // what the API server holds, by Service key

	// sub: status is written through the status subresource (a create
	// drops it); otherwise it goes in with the create and in patches of the
	// object.
	sub atomic.Bool
}

// NewK8s returns a writer; call Run to start it.
func NewK8s(client rest.Interface, namespace, node string, source Source, log *slog.Logger, opts ...Option) *K8s {
	return newWriter(bgpKind, client, namespace, node, source, log, opts...)
}

func newWriter(k kind, client rest.Interface, namespace, node string, source Source, log *slog.Logger, opts ...Option) *K8s {
	o := options{backoffBase: DefaultBackoffBase, backoff: DefaultBackoffMax, resync: DefaultResync, workers: DefaultWorkers}
	for _, f := range opts {
		f(&o)
	}
	rl := workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.backoffBase, o.backoff)
	w := &K8s{kind: k, client: client, namespace: namespace, node: node, source: source, log: log, resync: o.resync, ready: o.ready, workers: o.workers,
		written: map[string]held{}, rl: rl,
		q: workqueue.NewTypedRateLimitingQueue(rl),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecmplb_speaker_status_write_errors_total",
			Help: "Failed API calls of the ServiceBGPStatus and ServiceL2Status writers, by operation (list, create, update, delete); each is retried.",
		}, []string{"operation"}),
	}
	w.sub.Store(k.subresource)
	for _, op := range []string{"list", "create", "update", "delete"} {
		w.errs.WithLabelValues(op)
	}
	if o.reg != nil {
		if err := o.reg.Register(w.errs); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				log.Error("registering status metrics", "err", err)
			} else if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				w.errs = c
			}
		}
	}
	return w
}

// Changed implements Writer.
func (w *K8s) Changed(key string) { w.q.Add(key) }

// ChangedAll implements Writer.
func (w *K8s) ChangedAll() {
	w.mu.Lock()
	keys := make([]string, 0, len(w.written))
	for k := range w.written {
		keys = append(keys, k)
	}
	w.mu.Unlock()
	for _, k := range keys {
		w.q.Add(k)
	}
}

// ObjectName is the deterministic name of the status object for a Service key
// ("namespace/name") on a node: the three parts joined with "-" for people to
// read, then a hash of the exact (node, namespace, name) tuple, which keeps
// names distinct where the readable parts are not ("a" + "b-c/d" and "a-b" +
// "c/d"). It is a valid object name of at most 253 characters.
func ObjectName(node, key string) string {
	ns, name, _ := strings.Cut(key, "/")
	h := sha256.New()
	// NUL occurs in none of the three, so the hashed string is unambiguous.
	for _, s := range []string{node, "\x00", ns, "\x00", name} {
		h.Write([]byte(s))
	}
	sum := hex.EncodeToString(h.Sum(nil)[:8]) // 64 bits: no collision in practice
	const maxLen = 253
	readable := subdomain(node + "-" + ns + "-" + name)
	if room := maxLen - 1 - len(sum); len(readable) > room {
		readable = readable[:room]
	}
	readable = strings.TrimRight(readable, "-.")
	if readable == "" {
		return sum
	}
	return readable + "-" + sum
}

// subdomain lowercases s and drops or replaces what a DNS-1123 subdomain cannot
// hold, so that s followed by "-" and alphanumerics is one.
func subdomain(s string) string {
	var b strings.Builder
	prev := byte(0)
	for _, c := range []byte(strings.ToLower(s)) {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		switch {
		case alnum:
		case prev == 0 || prev == '.':
			continue // a label starts with an alphanumeric
		case c == '.' && prev != '-':
		default:
			if prev == '-' {
				continue
			}
			c = '-'
		}
		b.WriteByte(c)
		prev = c
	}
	return b.String()
}

// Run lists the objects this node wrote before (so stale ones get deleted) and then
// writes until ctx ends.
func (w *K8s) Run(ctx context.Context) {
	defer w.q.ShutDown()
	go func() {
		<-ctx.Done()
		w.q.ShutDown()
	}()
	if w.ready != nil {
		select {
		case <-w.ready:
		case <-ctx.Done():
			return
		}
	}
	// The first List comes before any write, so that the writers know which
	// objects exist.
	for {
		w.listMu.Lock()
		err := w.list(ctx)
		w.listMu.Unlock()
		if err == nil {
			w.rl.Forget(listKey)
			break
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("listing this node's status objects; will retry", "kind", w.kind.name, "node", w.node, "attempt", w.rl.NumRequeues(listKey)+1, "err", err)
		select {
		case <-time.After(w.rl.When(listKey)):
		case <-ctx.Done():
			return
		}
	}
	if w.resync > 0 {
		go func() {
			t := time.NewTicker(w.resync)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					w.q.Add(listKey)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for i := 0; i < w.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w.next(ctx) {
			}
		}()
	}
	wg.Wait()
}

// next processes one queue item; false once the queue is shut down. The queue
// never hands the same Service to two workers at once.
func (w *K8s) next(ctx context.Context) bool {
	key, shutdown := w.q.Get()
	if shutdown {
		return false
	}
	defer w.q.Done(key)
	if ctx.Err() != nil {
		return false
	}
	var err error
	if key == listKey {
		w.listMu.Lock()
		err = w.list(ctx)
		w.listMu.Unlock()
	} else {
		w.listMu.RLock()
		err = w.sync(ctx, key)
		w.listMu.RUnlock()
	}
	switch {
	case err == nil:
		w.q.Forget(key)
	case ctx.Err() == nil:
		attempt := w.q.NumRequeues(key) + 1
		if key == listKey {
			w.log.Warn("listing this node's status objects; will retry", "kind", w.kind.name, "node", w.node, "attempt", attempt, "err", err)
		} else {
			w.log.Warn("writing status object; will retry", "kind", w.kind.name, "service", key, "attempt", attempt, "err", err)
		}
		w.q.AddRateLimited(key)
	}
	return true
}

// failed counts a failed call and returns err.
func (w *K8s) failed(op string, err error) error {
	w.errs.WithLabelValues(op).Inc()
	return err
}

// list reads this node's objects from the API server, records them as written,
// deletes those whose name is not the one ObjectName gives (an older naming
// scheme), and queues every Service the API server or the writer knew of, so each
// is compared with the Source.
func (w *K8s) list(ctx context.Context) error {
	items, err := w.kind.items(w.client.Get().Namespace(w.namespace).Resource(w.kind.resource).
		Param("labelSelector", v1beta1.LabelNode+"="+w.node).Do(ctx))
	if err != nil {
		return w.failed("list", fmt.Errorf("list %s in %s for node %s: %w", w.kind.name, w.namespace, w.node, err))
	}
	found := map[string]held{}
	var errs []error
	for _, o := range items {
		ns, svc := o.labels[v1beta1.LabelServiceNamespace], o.labels[v1beta1.LabelServiceName]
		if ns == "" || svc == "" {
			ns, svc = o.ns, o.svc
		}
		if ns == "" || svc == "" {
			w.log.Warn("status object of this node names no Service; leaving it", "kind", w.kind.name, "name", o.name)
			continue
		}
		key := ns + "/" + svc
		if o.name != ObjectName(w.node, key) {
			if err := w.delete(ctx, o.name); err != nil {
				errs = append(errs, err)
			}
			w.q.Add(key) // announced, it gets an object under its current name
			continue
		}
		found[key] = held{complete: o.complete, sum: o.st.digest(), alone: true}
	}
	w.mu.Lock()
	old := w.written
	w.written = found
	w.mu.Unlock()
	for k := range found {
		w.q.Add(k)
	}
	for k := range old {
		w.q.Add(k)
	}
	return errors.Join(errs...)
}

func (w *K8s) delete(ctx context.Context, name string) error {
	err := w.client.Delete().Namespace(w.namespace).Resource(w.kind.resource).Name(name).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		return w.failed("delete", fmt.Errorf("delete %s %s/%s: %w", w.kind.name, w.namespace, name, err))
	}
	return nil
}

func (w *K8s) record(key string, h held, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		w.written[key] = h
	} else {
		delete(w.written, key)
	}
}

// sync converges the object of one Service to the Source. ecmplb's
// ServiceBGPStatus CRD has no status subresource, so a new object costs one
// call (a create that carries the status) and a change one more (a merge
// patch of its status). Against a CRD with a status subresource (MetalLB's,
// and ecmplb's ServiceL2Status) the create's status is dropped and a merge
// patch of .../status follows. Nothing is read first: a create that finds the
// object (created behind the writer's back) patches it, and a patch that finds
// none creates it.
func (w *K8s) sync(ctx context.Context, key string) error {
	st, announced := w.source(key)
	w.mu.Lock()
	old, had := w.written[key]
	w.mu.Unlock()
	name := ObjectName(w.node, key)
	switch {
	case !announced && !had:
		return nil
	case !announced:
		if err := w.delete(ctx, name); err != nil {
			return err
		}
		w.record(key, held{}, false)
		return nil
	case had && old.complete && old.sum == st.digest() && old.alone:
		return nil
	}
	ns, svc, _ := strings.Cut(key, "/")
	if !had {
		obj := w.kind.object(metav1.ObjectMeta{Name: name, Namespace: w.namespace, Labels: map[string]string{
			v1beta1.LabelNode: w.node, v1beta1.LabelServiceName: svc, v1beta1.LabelServiceNamespace: ns,
		}}, w.node, ns, svc, st)
		res := w.client.Post().Namespace(w.namespace).Resource(w.kind.resource).Body(obj).Do(ctx)
		err := res.Error()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return w.failed("create", fmt.Errorf("create %s %s/%s for service %s: %w", w.kind.name, w.namespace, name, key, err))
		}
		// The object exists: should the status write fail and the Service go
		// away, it must still be deleted.
		old = held{alone: !w.kind.exclusive}
		if err == nil {
			if w.holds(res, ns, svc, st) {
				old.complete, old.sum = true, st.digest()
				w.useSubresource(false)
			} else {
				w.useSubresource(true)
			}
		}
		w.record(key, old, true)
	}
	if !old.alone {
		// Retried until it succeeds, however the status write went.
		if err := w.deleteOthers(ctx, ns, svc); err != nil {
			return err
		}
		old.alone = true
		w.record(key, old, true)
	}
	if old.complete && old.sum == st.digest() {
		return nil
	}
	err := w.writeStatus(ctx, name, key, ns, svc, st)
	if had && apierrors.IsNotFound(err) {
		// Deleted behind the writer's back: create it again.
		w.record(key, held{}, false)
		return w.sync(ctx, key)
	}
	return err
}

// holds tells whether a write's answer holds the status sent.
func (w *K8s) holds(res rest.Result, ns, svc string, st Status) bool {
	o, err := w.kind.one(res)
	return err == nil && o.node == w.node && o.ns == ns && o.svc == svc && o.st.digest() == st.digest()
}

// useSubresource records how the API server takes this kind's status, and
// says so when that changes.
func (w *K8s) useSubresource(sub bool) {
	if w.sub.Swap(sub) == sub {
		return
	}
	switch {
	case sub && !w.kind.subresource:
		// MetalLB's CRD: ecmplb's RBAC grants no patch of .../status.
		w.log.Warn("the CRD has a status subresource, as MetalLB's: apply ecmplb's CRD (it has none), or status writes need patch on "+
			w.kind.resource+"/status and take two calls per new object", "kind", w.kind.name)
	case sub:
		w.log.Info("the CRD has a status subresource: writing status through it (two calls per new object)", "kind", w.kind.name)
	default:
		w.log.Info("the CRD has no status subresource: status goes in with the create (one call per new object)", "kind", w.kind.name)
	}
}

// deleteOthers deletes the objects other nodes hold for a Service.
func (w *K8s) deleteOthers(ctx context.Context, ns, svc string) error {
	items, err := w.kind.items(w.client.Get().Namespace(w.namespace).Resource(w.kind.resource).
		Param("labelSelector", v1beta1.LabelServiceNamespace+"="+ns+","+v1beta1.LabelServiceName+"="+svc).Do(ctx))
	if err != nil {
		return w.failed("list", fmt.Errorf("list %s in %s for service %s/%s: %w", w.kind.name, w.namespace, ns, svc, err))
	}
	var errs []error
	for _, o := range items {
		if o.labels[v1beta1.LabelNode] == w.node {
			continue
		}
		if err := w.delete(ctx, o.name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// bgpPatch is the JSON merge patch of a ServiceBGPStatus's whole status.
// Empty lists are sent as null, which removes them.
type bgpPatch struct {
	Status struct {
		Node             string   `json:"node"`
		ServiceName      string   `json:"serviceName"`
		ServiceNamespace string   `json:"serviceNamespace"`
		Peers            []string `json:"peers"`
		Prefixes         []string `json:"prefixes"`
		EstablishedPeers []string `json:"establishedPeers"`
	} `json:"status"`
}

// writeStatus writes the whole status of an existing object (a merge patch of
// the object, or of .../status on a CRD with a status subresource) and
// records it. The answers say which CRD the cluster has: a patch of the
// object whose answer lacks the status met a status subresource (which
// ignores it there); a status patch that is not found met a missing object or
// a CRD without one (kube-apiserver answers both alike), and a patch of the
// object tells which.
func (w *K8s) writeStatus(ctx context.Context, name, key, ns, svc string, st Status) error {
	body, err := json.Marshal(w.kind.patch(w.node, ns, svc, st))
	if err != nil {
		return err
	}
	failed := func(err error) error {
		return w.failed("update", fmt.Errorf("update status of %s %s/%s for service %s: %w", w.kind.name, w.namespace, name, key, err))
	}
	patchStatus := func() error {
		return w.client.Patch(types.MergePatchType).Namespace(w.namespace).Resource(w.kind.resource).Name(name).SubResource("status").
			Body(body).Do(ctx).Error()
	}
	done := func() error {
		w.record(key, held{sum: st.digest(), complete: true, alone: true}, true)
		return nil
	}
	sub := w.sub.Load()
	if sub {
		err := patchStatus()
		if err == nil {
			return done()
		}
		if !apierrors.IsNotFound(err) {
			return failed(err)
		}
		// A missing object, or no status subresource: the object's patch tells.
	}
	res := w.client.Patch(types.MergePatchType).Namespace(w.namespace).Resource(w.kind.resource).Name(name).Body(body).Do(ctx)
	if err := res.Error(); err != nil {
		return failed(err)
	}
	if w.holds(res, ns, svc, st) {
		w.useSubresource(false)
		return done()
	}
	w.useSubresource(true)
	if sub {
		return failed(fmt.Errorf("the API server took the status neither in the object nor through its status subresource"))
	}
	if err := patchStatus(); err != nil {
		return failed(err)
	}
	return done()
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}
