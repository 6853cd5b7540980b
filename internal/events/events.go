// Package events writes core/v1 Events for one component through a plain REST
// client, without client-go's event recorder (which links strategic merge
// patch and the OpenAPI models with it).
//
// Eventf never blocks: Events go through a bounded queue to one writer, and are
// dropped (and counted) when the queue is full. An Event that repeats one
// already written (same object, type, reason and message) raises that Event's
// count with a merge patch instead of creating another object. Each object gets
// at most Burst Events, then one more per Refill, so a flapping object cannot
// flood the apiserver.
package events

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// MaxMessage is the longest message written, in bytes; a longer one is cut at a
// rune boundary.
const MaxMessage = 1024

// Options configure a Recorder.
type Options struct {
	// Client is a REST client of core/v1 (events: create and patch).
	Client rest.Interface
	// Scheme gives the kind and version of the objects Events are about.
	Scheme *runtime.Scheme
	// Component and Host fill the Event's source and reporting fields.
	Component, Host string
	Logger          *slog.Logger

	// QueueSize bounds the Events waiting to be written (default 1000).
	QueueSize int
	// CacheSize bounds the Events remembered for aggregation and the objects
	// remembered for the rate limit (default 4096 each).
	CacheSize int
	// Burst and Refill: each object gets Burst Events, then one per Refill
	// (defaults 25 and 5 minutes).
	Burst  int
	Refill time.Duration
	// Attempts bounds the tries per write; Backoff is the first delay
	// between them, doubled each time (defaults 5 and 200 ms).
	Attempts int
	Backoff  time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Recorder writes Events. Its methods are safe for concurrent use.
type Recorder struct {
	o     Options
	queue chan *corev1.Event
	done  chan struct{}
	stop  chan struct{}   // closed by Close: write what is queued, then end
	quit  chan struct{}   // closed when Close's grace is over: give up retries
	ctx   context.Context // cancelled with quit: ends a call in flight
	abort context.CancelFunc
	once  sync.Once

	dropped, written, patched atomic.Uint64

	// Only the writer goroutine uses these.
	seen    *lru[digest, *written] // aggregation key → the Event written
	buckets *lru[digest, *bucket]  // object → its rate limit
}

type written struct {
	name  string
	count int32
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New starts a Recorder; Close stops it.
func New(o Options) *Recorder {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 4096
	}
	if o.Burst <= 0 {
		o.Burst = 25
	}
	if o.Refill <= 0 {
		o.Refill = 5 * time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Recorder{o: o, queue: make(chan *corev1.Event, o.QueueSize), done: make(chan struct{}), stop: make(chan struct{}), quit: make(chan struct{}),
		seen: newLRU[digest, *written](o.CacheSize), buckets: newLRU[digest, *bucket](o.CacheSize)}
	r.ctx, r.abort = context.WithCancel(context.Background())
	go r.run()
	return r
}

// Eventf queues an Event about obj. It never blocks; an object whose kind the
// scheme does not know is logged and skipped.
func (r *Recorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	ev, err := r.build(obj, typ, reason, fmt.Sprintf(format, args...))
	if err != nil {
		r.o.Logger.Error("event not recorded", "reason", reason, "err", err)
		return
	}
	select {
	case <-r.stop:
		r.dropped.Add(1)
	case r.queue <- ev:
	default:
		r.dropped.Add(1)
		r.o.Logger.Warn("event queue full, event dropped", "object", ev.InvolvedObject.Name, "reason", reason)
	}
}

// Stats reports the Events written as new objects, counted on an existing
// one, and dropped (queue full, rate limit, or failed writes).
func (r *Recorder) Stats() (written, patched, dropped uint64) {
	return r.written.Load(), r.patched.Load(), r.dropped.Load()
}

// Close writes what is queued, for at most grace, then stops the writer.
func (r *Recorder) Close(grace time.Duration) {
	r.once.Do(func() {
		close(r.stop)
		select {
		case <-r.done:
		case <-time.After(grace):
			close(r.quit)
			r.abort()
			<-r.done
		}
		r.abort()
	})
}

func (r *Recorder) build(obj runtime.Object, typ, reason, msg string) (*corev1.Event, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	gvks, _, err := r.o.Scheme.ObjectKinds(obj)
	if err != nil {
		return nil, err
	}
	gvk := gvks[0]
	ns := acc.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault // cluster-scoped objects' Events live there
	}
	now := metav1.NewTime(r.o.Now())
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns,
			Name: acc.GetName() + "." + strconv.FormatInt(now.UnixNano(), 16)},
		InvolvedObject: corev1.ObjectReference{Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(),
			Namespace: acc.GetNamespace(), Name: acc.GetName(), UID: acc.GetUID(), ResourceVersion: acc.GetResourceVersion()},
		Type: typ, Reason: reason, Message: cut(msg, MaxMessage),
		Source:         corev1.EventSource{Component: r.o.Component, Host: r.o.Host},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: r.o.Component, ReportingInstance: r.o.Host,
	}, nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (r *Recorder) run() {
	defer close(r.done)
	for {
		select {
		case ev := <-r.queue:
			r.write(ev)
		case <-r.stop:
			for {
				select {
				case <-r.quit:
					r.dropped.Add(uint64(len(r.queue)))
					return
				case ev := <-r.queue:
					r.write(ev)
				default:
					return
				}
			}
		}
	}
}

// digest stands for a key in the caches: 128 bits of SHA-256 (16 bytes per
// entry where the keys, messages included, took hundreds).
type digest [16]byte

func digestOf(parts ...string) digest {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

func objectKey(ev *corev1.Event) string {
	o := ev.InvolvedObject
	return o.APIVersion + "/" + o.Kind + "/" + o.Namespace + "/" + o.Name + "/" + string(o.UID)
}

// allow takes a token from the object's bucket.
func (r *Recorder) allow(obj digest, now time.Time) bool {
	b, ok := r.buckets.get(obj)
	if !ok {
		b = &bucket{tokens: float64(r.o.Burst), at: now}
		r.buckets.put(obj, b)
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = min(float64(r.o.Burst), b.tokens+float64(el)/float64(r.o.Refill))
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (r *Recorder) write(ev *corev1.Event) {
	obj := objectKey(ev)
	if !r.allow(digestOf(obj), ev.LastTimestamp.Time) {
		r.dropped.Add(1)
		r.o.Logger.Debug("event rate-limited", "object", obj, "reason", ev.Reason)
		return
	}
	key := digestOf(obj, ev.Type, ev.Reason, ev.Message)
	if w, ok := r.seen.get(key); ok {
		err := r.retry(func(ctx context.Context) error { return r.bump(ctx, ev.Namespace, w, ev.LastTimestamp) })
		if err == nil {
			w.count++
			r.patched.Add(1)
			return
		}
		if !apierrors.IsNotFound(err) {
			r.dropped.Add(1)
			r.o.Logger.Warn("event not counted", "event", w.name, "err", err)
			return
		}
		// The Event expired (the apiserver keeps Events for an hour): write it anew.
		r.seen.remove(key)
	}
	err := r.retry(func(ctx context.Context) error {
		return r.o.Client.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
	})
	if err != nil {
		r.dropped.Add(1)
		r.o.Logger.Warn("event not written", "object", obj, "reason", ev.Reason, "err", err)
		return
	}
	r.written.Add(1)
	r.seen.put(key, &written{name: ev.Name, count: 1})
}

// bump raises the count of an Event this Recorder wrote (and alone writes) by
// one: a merge patch of its count and last time, nothing read first.
func (r *Recorder) bump(ctx context.Context, ns string, w *written, at metav1.Time) error {
	patch, err := json.Marshal(map[string]any{"count": w.count + 1, "lastTimestamp": at})
	if err != nil {
		return err
	}
	return r.o.Client.Patch(types.MergePatchType).Namespace(ns).Resource("events").Name(w.name).Body(patch).Do(ctx).Error()
}

// retry runs call until it succeeds, fails for good (not found, invalid,
// forbidden) or the attempts are spent, backing off between tries.
func (r *Recorder) retry(call func(context.Context) error) error {
	delay := r.o.Backoff
	var err error
	for i := 0; i < r.o.Attempts; i++ {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		err = call(ctx)
		cancel()
		if err == nil || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) ||
			apierrors.IsAlreadyExists(err) || apierrors.IsBadRequest(err) {
			return err
		}
		if i+1 == r.o.Attempts || r.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(delay):
		case <-r.quit:
			return err
		}
		delay *= 2
	}
	return err
}

// lru is a map bounded to n entries that forgets the least recently used.
type lru[K comparable, V any] struct {
	n     int
	order *list.List // front: most recent
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k K
	v V
}

func newLRU[K comparable, V any](n int) *lru[K, V] {
	return &lru[K, V]{n: n, order: list.New(), items: map[K]*list.Element{}}
}

func (l *lru[K, V]) get(k K) (V, bool) {
	if e, ok := l.items[k]; ok {
		l.order.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

func (l *lru[K, V]) put(k K, v V) {
	if e, ok := l.items[k]; ok {
		e.Value.(*lruEntry[K, V]).v = v
		l.order.MoveToFront(e)
		return
	}
	l.items[k] = l.order.PushFront(&lruEntry[K, V]{k, v})
	if l.order.Len() > l.n {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*lruEntry[K, V]).k)
	}
}

func (l *lru[K, V]) remove(k K) {
	if e, ok := l.items[k]; ok {
		l.order.Remove(e)
		delete(l.items, k)
	}
}
