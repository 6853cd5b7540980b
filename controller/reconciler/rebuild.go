package reconciler

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

// restore registers the allocations found in the status of the given
// Services (those without status IPs are skipped), least recently changed
// Service first, and returns how many it registered and how many it could
// not (each reported to failed). When Services claim one IP but may no
// longer share it, the one whose spec changed last is the one that
// introduced the conflict: it loses the IP and its reconcile gives it a new
// one, as the running controller would have done when the change arrived.
// Ties go to the older Service, then the name. Only the sorted pointers are
// held: each Service's request is made when its turn comes and dropped
// after, so a rebuild at 10,000 Services holds no second copy of them.
func restore(alloc *allocator.Allocator, svcs []*Svc, failed func(key string, ips []netip.Addr, err error)) (restored, conflicts int) {
	sort.Slice(svcs, func(i, j int) bool {
		a, b := svcs[i], svcs[j]
		if ta, tb := a.lastChange(), b.lastChange(); !ta.Equal(tb) {
			return ta.Before(tb)
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return keyCompare(a, b) < 0
	})
	for _, s := range svcs {
		ips := s.statusIPs()
		if len(ips) == 0 {
			continue
		}
		// A malformed request annotation does not matter here: the status
		// is what the Service holds.
		r, _ := s.request(nil)
		if _, err := alloc.Restore(r, ips); err != nil {
			conflicts++
			failed(r.Key, ips, err)
			continue
		}
		restored++
	}
	return restored, conflicts
}

// keyCompare orders Services by their key "namespace/name" (ServiceKey)
// without building the keys.
func keyCompare(a, b *Svc) int {
	at := func(s *Svc, i int) (byte, bool) {
		switch {
		case i < len(s.Namespace):
			return s.Namespace[i], true
		case i == len(s.Namespace):
			return '/', true
		case i-len(s.Namespace)-1 < len(s.Name):
			return s.Name[i-len(s.Namespace)-1], true
		}
		return 0, false
	}
	for i := 0; ; i++ {
		x, okx := at(a, i)
		y, oky := at(b, i)
		switch {
		case !okx && !oky:
			return 0
		case !okx:
			return -1
		case !oky:
			return 1
		case x != y:
			return int(x) - int(y)
		}
	}
}

// FieldManager is the field manager of the controller's own writes to
// Services (the pool annotation), so LastChange can leave them out.
const FieldManager = "ecmplb-controller"

// LastChange is when a Service was last changed by anyone but this controller:
// the newest time among its managedFields entries for the main resource (status
// writes are a subresource), or its creation time. The API server keeps these
// times, so they survive a controller restart.
func LastChange(svc *corev1.Service) time.Time {
	t := svc.CreationTimestamp.Time
	for _, mf := range svc.ManagedFields {
		if mf.Subresource != "" || mf.Manager == FieldManager || mf.Time == nil {
			continue
		}
		if mf.Time.After(t) {
			t = mf.Time.Time
		}
	}
	return t
}

// rebuild runs once leadership is held: it loads the pools and re-registers
// every Service's current IPs, and only then lets reconciles run. The
// Services come from the informer cache when it provably holds every write
// made before this replica's Lease (cacheCoversLease), else from a live
// (consistent) List. Pools and conflicting claims are decided as the running
// controller decides them (DecidePools, restore).
func (c *Controller) rebuild(ctx context.Context) error {
	start := time.Now()
	// Read before the cache is waited for: the Lease's version is that of
	// our acquisition, unless it was renewed since (then the cache check
	// below fails safe).
	leaseRV := c.leaseVersion(ctx)
	var pools v1beta1.IPAddressPoolList
	if err := c.reader.List(ctx, &pools, client.InNamespace(c.opts.PoolNamespace)); err != nil {
		return fmt.Errorf("rebuild: list IPAddressPools: %w", err)
	}
	// The same verdict the running controller reaches (DecidePools).
	if err := c.applyPools(ctx, pools.Items); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if !c.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("rebuild: cache did not sync")
	}
	synced := time.Now()

	var svcs []*Svc
	listed, source := 0, "live List"
	if store, cacheRV, ok := c.cacheCoversLease(ctx, leaseRV); ok {
		// The cached objects themselves, read only (no copies).
		source = "cache at resourceVersion " + cacheRV
		for _, o := range store.List() {
			s, ok := o.(*Svc)
			if !ok {
				continue
			}
			listed++
			if s.handles(c.opts.LoadBalancerClass) && len(s.Ingress) > 0 {
				svcs = append(svcs, s)
			}
		}
	} else if err := c.listLive(ctx, func(svc *corev1.Service) {
		listed++
		if Handles(svc, c.opts.LoadBalancerClass) && len(svc.Status.LoadBalancer.Ingress) > 0 {
			svcs = append(svcs, Compact(svc))
		}
	}); err != nil {
		return err
	}
	restored, conflicts := restore(c.alloc, svcs, func(key string, ips []netip.Addr, err error) {
		c.log.Warn("status IP not restored; the Service will get a new one", "service", key,
			"ips", ipStrings(ips), "error", err.Error())
	})
	c.log.Info("allocations rebuilt", "services", listed, "from", source, "restored", restored,
		"conflicts", conflicts, "pools", len(pools.Items), "took", time.Since(start).String(),
		"afterSync", time.Since(synced).String())
	close(c.ready)
	c.kickFlush()
	return nil
}

// listLive pages through every Service from the API server.
func (c *Controller) listLive(ctx context.Context, each func(*corev1.Service)) error {
	opts := []client.ListOption{client.Limit(500)}
	for {
		var list corev1.ServiceList
		if err := c.reader.List(ctx, &list, opts...); err != nil {
			return fmt.Errorf("rebuild: list Services: %w", err)
		}
		for i := range list.Items {
			each(&list.Items[i])
		}
		if list.Continue == "" {
			return nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
}

// leaseVersion reads the resourceVersion of this replica's leader-election
// Lease ("" without leader election, or when it cannot be read).
func (c *Controller) leaseVersion(ctx context.Context) string {
	if c.opts.LeaseName == "" {
		return ""
	}
	l := &coordinationv1.Lease{}
	if err := c.reader.Get(ctx, client.ObjectKey{Namespace: c.opts.PoolNamespace, Name: c.opts.LeaseName}, l); err != nil {
		c.log.Warn("leader-election Lease not read; rebuilding from a live List", "error", err.Error())
		return ""
	}
	return l.ResourceVersion
}

// cacheCoversLease reports whether the synced Service cache has seen the
// API server's state at least up to leaseRV: every write of a previous
// leader came before it released the Lease, so before our acquisition. The
// Service informer is started by the Service controller, which runs only
// on the leader, so its first (consistent) read follows the acquisition
// and this holds; a failed or undecidable check (resourceVersions that are
// not the integers kube-apiserver gives) means a live List instead.
func (c *Controller) cacheCoversLease(ctx context.Context, leaseRV string) (toolscache.Store, string, bool) {
	if leaseRV == "" {
		return nil, "", false
	}
	inf, err := c.cache.GetInformer(ctx, &corev1.Service{})
	if err != nil {
		return nil, "", false
	}
	v, ok := inf.(interface {
		LastSyncResourceVersion() string
		GetStore() toolscache.Store
	})
	if !ok || !inf.HasSynced() {
		return nil, "", false
	}
	// The reflector records the List's resourceVersion just after it hands
	// the List to the informer's queue, which may be through it (synced)
	// first: wait a little for the version rather than list every Service
	// again (about half a second at 11,000).
	cacheRV := v.LastSyncResourceVersion()
	for deadline := time.Now().Add(listVersionWait); cacheRV == "" && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(time.Millisecond)
		cacheRV = v.LastSyncResourceVersion()
	}
	return v.GetStore(), cacheRV, ResourceVersionAtLeast(cacheRV, leaseRV)
}

// listVersionWait bounds cacheCoversLease's wait for the List's version.
const listVersionWait = time.Second

// ResourceVersionAtLeast reports whether resourceVersion a is known to be
// at or after b. Both must be the decimal integers kube-apiserver hands out
// (etcd revisions); anything else is not comparable and yields false.
func ResourceVersionAtLeast(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x >= y
}

// serviceStore returns the Service informer's store (the cache's, holding
// Svcs; the informer is created on first use, on the leader).
func (c *Controller) serviceStore(ctx context.Context) (toolscache.Store, error) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	if c.store != nil {
		return c.store, nil
	}
	inf, err := c.cache.GetInformer(ctx, &corev1.Service{})
	if err != nil {
		return nil, fmt.Errorf("service informer: %w", err)
	}
	v, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return nil, fmt.Errorf("service informer %T has no store", inf)
	}
	c.store = v.GetStore()
	return c.store, nil
}

// cachedService reads a Service from the cache, as a new corev1.Service
// made from its Svc (nil: not in the cache, deleted).
func (c *Controller) cachedService(ctx context.Context, key string) (*corev1.Service, error) {
	store, err := c.serviceStore(ctx)
	if err != nil {
		return nil, err
	}
	o, ok, err := store.GetByKey(key)
	if err != nil || !ok {
		return nil, err
	}
	s, ok := o.(*Svc)
	if !ok {
		return nil, fmt.Errorf("the Service cache holds a %T, not an Svc (is the cache's transform Compact?)", o)
	}
	return s.Service(), nil
}
