package app

import (
	"context"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// syncInformer is synced once told; it counts how often it was asked and
// signals each ask.
type syncInformer struct {
	cache.Informer // only HasSynced is called
	synced         atomic.Bool
	asks           chan struct{}
}

func (i *syncInformer) HasSynced() bool {
	select {
	case i.asks <- struct{}{}:
	default:
	}
	return i.synced.Load()
}

// innerCache hands out one informer and records how it was asked to.
type innerCache struct {
	cache.Cache // only the methods below are called
	inf         *syncInformer
	block       atomic.Value // bool: the BlockUntilSynced it was given
	waits       atomic.Int32
	running     chan struct{}
}

func (c *innerCache) GetInformer(_ context.Context, _ client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	c.block.Store(blocks(opts))
	return c.inf, nil
}

// WaitForCacheSync is the inner cache's: an immediate look, then (a look
// every 100 ms, here none) until ctx ends.
func (c *innerCache) WaitForCacheSync(ctx context.Context) bool {
	c.waits.Add(1)
	if c.inf.HasSynced() {
		return true
	}
	<-ctx.Done()
	return false
}

func (c *innerCache) Start(ctx context.Context) error {
	close(c.running)
	<-ctx.Done()
	return nil
}

func newInner() *innerCache {
	return &innerCache{inf: &syncInformer{asks: make(chan struct{}, 1)}, running: make(chan struct{})}
}

// A blocking GetInformer on a started cache returns once the informer has
// synced, having looked itself; the inner cache is never asked to block
// (its wait looks only every 100 ms).
func TestQuickSyncWaitsForTheSync(t *testing.T) {
	inner := newInner()
	q := &quickSync{Cache: inner}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Start(ctx) }()
	<-inner.running
	done := make(chan error, 1)
	go func() {
		_, err := q.GetInformer(ctx, &corev1.Service{})
		done <- err
	}()
	// Asked at least twice (the first look and one poll) while not synced.
	<-inner.inf.asks
	<-inner.inf.asks
	select {
	case err := <-done:
		t.Fatalf("GetInformer returned before the sync: %v", err)
	default:
	}
	inner.inf.synced.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, _ := inner.block.Load().(bool); b {
		t.Error("the inner cache was asked to block until synced")
	}
	if !q.WaitForCacheSync(ctx) || inner.waits.Load() != 1 {
		t.Errorf("WaitForCacheSync: inner asked %d times, want once", inner.waits.Load())
	}
}

// WaitForCacheSync asks the inner cache again and again, each time for
// syncPoll, until it has synced: every informer it holds, those made by
// reads through it too, is looked at every syncPoll, not every 100 ms.
func TestQuickSyncWaitForCacheSyncAsksAgain(t *testing.T) {
	inner := newInner()
	q := &quickSync{Cache: inner}
	go func() {
		for range 3 {
			<-inner.inf.asks
		}
		inner.inf.synced.Store(true)
	}()
	if !q.WaitForCacheSync(context.Background()) {
		t.Fatal("WaitForCacheSync false")
	}
	if n := inner.waits.Load(); n < 3 {
		t.Errorf("inner asked %d times, want at least 3", n)
	}
}

// Before the cache starts nothing syncs, so nothing blocks (as the inner
// cache); an informer asked for without blocking is handed out at once.
func TestQuickSyncDoesNotBlockBeforeStartOrWhenAskedNotTo(t *testing.T) {
	inner := newInner()
	q := &quickSync{Cache: inner}
	ctx := context.Background()
	if _, err := q.GetInformer(ctx, &corev1.Service{}); err != nil {
		t.Fatal(err)
	}
	q.started.Store(true)
	if _, err := q.GetInformer(ctx, &corev1.Service{}, cache.BlockUntilSynced(false)); err != nil {
		t.Fatal(err)
	}
}

// A wait that ends with its context is the inner cache's timeout error, and
// WaitForCacheSync reports false.
func TestQuickSyncWaitEndsWithContext(t *testing.T) {
	inner := newInner()
	q := &quickSync{Cache: inner}
	q.started.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-inner.inf.asks; cancel() }()
	if _, err := q.GetInformer(ctx, &corev1.Service{}); !apierrors.IsTimeout(err) {
		t.Fatalf("error %v, want a timeout", err)
	}
	if q.WaitForCacheSync(ctx) {
		t.Error("WaitForCacheSync true on an informer that never synced")
	}
}
