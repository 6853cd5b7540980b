// Package status writes one ServiceBGPStatus object per announced Service and node,
// saying which peers carry the Service's routes. Writes are asynchronous, coalesced
// per Service and rate-limited by the client, so a burst of announcements never waits
// for the API server.
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
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// Status is what is recorded for one Service on one node.
type Status struct {
	Peers            []string // BGPPeers the routes are announced to
	Prefixes         []string
	EstablishedPeers []string // of Peers, those with an established session
}

func (s Status) equal(o Status) bool {
	return slices.Equal(s.Peers, o.Peers) && slices.Equal(s.Prefixes, o.Prefixes) &&
		slices.Equal(s.EstablishedPeers, o.EstablishedPeers)
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
)

const resource = "servicebgpstatuses"

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
}

// WithRegisterer registers the writer's metrics (ecmplb_speaker_status_write_errors_total).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithBackoff sets the first and the longest delay before a failed call is retried
// (defaults DefaultBackoffBase and DefaultBackoffMax); the delay doubles with each
// failure of the same Service.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoff = base, max }
}

// WithResync sets how often this node's objects are listed again and compared with
// the Source (default DefaultResync; 0: only at start-up).
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithStartAfter makes Run wait until ready is closed before it lists or
// writes anything: until the Source has computed the node's announcements
// once, it reports every Service as not announced, and the start-up cleanup
// would delete objects that are still true (and then create them again).
func WithStartAfter(ready <-chan struct{}) Option { return func(o *options) { o.ready = ready } }

// held is what the API server holds for one Service, as far as the writer knows.
type held struct {
	st Status
	// complete is false for an object whose status was never written (created,
	// then the status write failed).
	complete bool
}

// K8s writes ServiceBGPStatus objects in a namespace.
type K8s struct {
	client    rest.Interface
	namespace string
	node      string
	source    Source
	log       *slog.Logger
	resync    time.Duration
	ready     <-chan struct{}
	errs      *prometheus.CounterVec

	q workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	written map[string]held // what the API server holds, by Service key
}

// NewK8s returns a writer; call Run to start it.
func NewK8s(client rest.Interface, namespace, node string, source Source, log *slog.Logger, opts ...Option) *K8s {
	o := options{backoffBase: DefaultBackoffBase, backoff: DefaultBackoffMax, resync: DefaultResync}
	for _, f := range opts {
		f(&o)
	}
	w := &K8s{client: client, namespace: namespace, node: node, source: source, log: log, resync: o.resync, ready: o.ready,
		written: map[string]held{},
		q: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](o.backoffBase, o.backoff)),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecmplb_speaker_status_write_errors_total",
			Help: "Failed API calls of the ServiceBGPStatus writer, by operation (list, get, create, update, delete); each is retried.",
		}, []string{"operation"}),
	}
	for _, op := range []string{"list", "get", "create", "update", "delete"} {
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
	w.q.Add(listKey)
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
	for {
		key, shutdown := w.q.Get()
		if shutdown {
			return
		}
		if ctx.Err() != nil {
			w.q.Done(key)
			return
		}
		var err error
		if key == listKey {
			err = w.list(ctx)
		} else {
			err = w.sync(ctx, key)
		}
		switch {
		case err == nil:
			w.q.Forget(key)
		case ctx.Err() == nil:
			attempt := w.q.NumRequeues(key) + 1
			if key == listKey {
				w.log.Warn("listing this node's ServiceBGPStatus objects; will retry", "node", w.node, "attempt", attempt, "err", err)
			} else {
				w.log.Warn("writing ServiceBGPStatus; will retry", "service", key, "attempt", attempt, "err", err)
			}
			w.q.AddRateLimited(key)
		}
		w.q.Done(key)
	}
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
	var list v1beta1.ServiceBGPStatusList
	err := w.client.Get().Namespace(w.namespace).Resource(resource).
		Param("labelSelector", v1beta1.LabelNode+"="+w.node).Do(ctx).Into(&list)
	if err != nil {
		return w.failed("list", fmt.Errorf("list ServiceBGPStatus in %s for node %s: %w", w.namespace, w.node, err))
	}
	found := map[string]held{}
	var errs []error
	for _, o := range list.Items {
		ns, svc := o.Labels[v1beta1.LabelServiceNamespace], o.Labels[v1beta1.LabelServiceName]
		if ns == "" || svc == "" {
			ns, svc = o.Status.ServiceNamespace, o.Status.ServiceName
		}
		if ns == "" || svc == "" {
			w.log.Warn("ServiceBGPStatus of this node names no Service; leaving it", "name", o.Name)
			continue
		}
		key := ns + "/" + svc
		if o.Name != ObjectName(w.node, key) {
			if err := w.delete(ctx, o.Name); err != nil {
				errs = append(errs, err)
			}
			w.q.Add(key) // announced, it gets an object under its current name
			continue
		}
		found[key] = held{complete: o.Status.Node != "", st: Status{Peers: o.Status.Peers,
			Prefixes: o.Status.Prefixes, EstablishedPeers: o.Status.EstablishedPeers}}
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
	err := w.client.Delete().Namespace(w.namespace).Resource(resource).Name(name).Do(ctx).Error()
	if err != nil && !apierrors.IsNotFound(err) {
		return w.failed("delete", fmt.Errorf("delete ServiceBGPStatus %s/%s: %w", w.namespace, name, err))
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

// sync converges the object of one Service to the Source.
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
	case had && old.complete && old.st.equal(st):
		return nil
	}
	st = Status{Peers: slices.Clone(st.Peers), Prefixes: slices.Clone(st.Prefixes),
		EstablishedPeers: slices.Clone(st.EstablishedPeers)}
	ns, svc, _ := strings.Cut(key, "/")
	want := v1beta1.ServiceBGPStatusStatus{Node: w.node, ServiceName: svc, ServiceNamespace: ns,
		Peers: st.Peers, Prefixes: st.Prefixes, EstablishedPeers: st.EstablishedPeers}

	var cur v1beta1.ServiceBGPStatus
	err := w.client.Get().Namespace(w.namespace).Resource(resource).Name(name).Do(ctx).Into(&cur)
	if apierrors.IsNotFound(err) {
		obj := &v1beta1.ServiceBGPStatus{
			TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceBGPStatus"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.namespace, Labels: map[string]string{
				v1beta1.LabelNode: w.node, v1beta1.LabelServiceName: svc, v1beta1.LabelServiceNamespace: ns,
			}},
		}
		cur = v1beta1.ServiceBGPStatus{}
		if err := w.client.Post().Namespace(w.namespace).Resource(resource).Body(obj).Do(ctx).Into(&cur); err != nil {
			return w.failed("create", fmt.Errorf("create ServiceBGPStatus %s/%s for service %s: %w", w.namespace, name, key, err))
		}
	} else if err != nil {
		return w.failed("get", fmt.Errorf("get ServiceBGPStatus %s/%s for service %s: %w", w.namespace, name, key, err))
	}
	// The object exists: should the status write fail and the Service go away,
	// it must still be deleted.
	if !had {
		w.record(key, held{}, true)
	}
	if cur.Status.Node == want.Node && cur.Status.ServiceName == want.ServiceName &&
		cur.Status.ServiceNamespace == want.ServiceNamespace &&
		st.equal(Status{Peers: cur.Status.Peers, Prefixes: cur.Status.Prefixes, EstablishedPeers: cur.Status.EstablishedPeers}) {
		w.record(key, held{st: st, complete: true}, true)
		return nil
	}
	cur.Status = want
	if err := w.client.Put().Namespace(w.namespace).Resource(resource).Name(name).SubResource("status").
		Body(&cur).Do(ctx).Error(); err != nil {
		return w.failed("update", fmt.Errorf("update status of ServiceBGPStatus %s/%s for service %s: %w", w.namespace, name, key, err))
	}
	w.record(key, held{st: st, complete: true}, true)
	return nil
}
