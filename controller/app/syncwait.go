package app

import (
	"context"
	"fmt"
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
// (up to 100) after the Service List was in the cache, and at a first start
// the rebuild waited a mean 50 ms for informers it reads through.
type quickSync struct {
	cache.Cache
	started atomic.Bool
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

// WaitForCacheSync asks the inner cache every syncPoll: its first look at
// every informer it holds (those made by reads through the cache too) is
// immediate, and each ask ends after syncPoll.
func (q *quickSync) WaitForCacheSync(ctx context.Context) bool {
	for {
		once, cancel := context.WithTimeout(ctx, syncPoll)
		synced := q.Cache.WaitForCacheSync(once) // false only once `once` ends
		cancel()
		if synced {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// wait, when the caller asked to block and the cache is started (before
// that nothing syncs; the inner cache does not block either), waits for
// inf's first sync.
func (q *quickSync) wait(ctx context.Context, inf cache.Informer, block bool, what string) (cache.Informer, error) {
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
