package app

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// syncPoll is how often a wait for an informer's first sync looks again.
const syncPoll = 5 * time.Millisecond

// quickSync is the manager's cache with waits for an informer's first sync
// that notice it within syncPoll. controller-runtime waits with client-go's
// WaitForCacheSync, which looks every 100 ms: at a restart the Service
// controller's workers and the allocation rebuild each started a mean 50 ms
// (up to 100) after the Service List was in the cache. Informers created
// by reads through the cache (not by GetInformer) are still waited for the
// inner way, by the inner WaitForCacheSync.
type quickSync struct {
	cache.Cache
	started  atomic.Bool
	mu       sync.Mutex
	informer []cache.Informer
}

// newQuickSyncCache is a manager.Options.NewCache.
func newQuickSyncCache(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
	c, err := cache.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	return &quickSync{Cache: c}, nil
}

// Start starts the inner cache.
func (q *quickSync) Start(ctx context.Context) error {
	q.started.Store(true)
	return q.Cache.Start(ctx)
}

// GetInformer is the inner GetInformer, waiting for the sync itself.
func (q *quickSync) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	block := blocks(opts)
	inf, err := q.Cache.GetInformer(ctx, obj, append(opts, cache.BlockUntilSynced(false))...)
	if err != nil {
		return nil, err
	}
	return q.wait(ctx, inf, block, fmt.Sprintf("%T", obj))
}

// GetInformerForKind is the inner GetInformerForKind, waiting for the sync
// itself.
func (q *quickSync) GetInformerForKind(ctx context.Context, gvk schema.GroupVersionKind, opts ...cache.InformerGetOption) (cache.Informer, error) {
	block := blocks(opts)
	inf, err := q.Cache.GetInformerForKind(ctx, gvk, append(opts, cache.BlockUntilSynced(false))...)
	if err != nil {
		return nil, err
	}
	return q.wait(ctx, inf, block, gvk.String())
}

// WaitForCacheSync waits for the informers handed out by GetInformer, then
// asks the inner cache (whose first look is immediate).
func (q *quickSync) WaitForCacheSync(ctx context.Context) bool {
	q.mu.Lock()
	infs := append([]cache.Informer(nil), q.informer...)
	q.mu.Unlock()
	for _, inf := range infs {
		if !waitSynced(ctx, inf.HasSynced) {
			return false
		}
	}
	return q.Cache.WaitForCacheSync(ctx)
}

// wait notes inf and, when the caller asked to block and the cache is
// started (before that nothing syncs; the inner cache does not block
// either), waits for its first sync.
func (q *quickSync) wait(ctx context.Context, inf cache.Informer, block bool, what string) (cache.Informer, error) {
	q.mu.Lock()
	known := false
	for _, i := range q.informer {
		known = known || i == inf
	}
	if !known {
		q.informer = append(q.informer, inf)
	}
	q.mu.Unlock()
	if block && q.started.Load() && !waitSynced(ctx, inf.HasSynced) {
		// What the inner cache returns when its own wait ends this way.
		return nil, apierrors.NewTimeoutError(fmt.Sprintf("failed waiting for %s Informer to sync", what), 0)
	}
	return inf, nil
}

// blocks resolves BlockUntilSynced as the inner cache does (default true).
func blocks(opts []cache.InformerGetOption) bool {
	var o cache.InformerGetOptions
	for _, f := range opts {
		f(&o)
	}
	return o.BlockUntilSynced == nil || *o.BlockUntilSynced
}

// waitSynced polls synced every syncPoll until it is true (true) or ctx
// ends (false).
func waitSynced(ctx context.Context, synced func() bool) bool {
	if synced() {
		return true
	}
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return synced()
		case <-t.C:
			if synced() {
				return true
			}
		}
	}
}
