package reconciler

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

// restoreItem is one Service's allocation found in its status.
type restoreItem struct {
	created time.Time // metadata.creationTimestamp
	changed time.Time // LastChange
	req     allocator.Request
	ips     []netip.Addr
}

// restoreItemFor reads the allocation a Service holds in its status (ok false:
// none). A malformed request annotation does not matter here: the status is
// what the Service holds. It keeps only what sharing checks need, so the
// listed pages can be freed.
func restoreItemFor(svc *corev1.Service) (restoreItem, bool) {
	ips := StatusIPs(svc)
	if len(ips) == 0 {
		return restoreItem{}, false
	}
	r, _ := RequestFor(svc, nil)
	r.Labels, r.IPs, r.Pool = nil, nil, ""
	r.Selector = maps.Clone(r.Selector)
	return restoreItem{created: svc.CreationTimestamp.Time, changed: LastChange(svc), req: r, ips: ips}, true
}

// restore registers the allocations found in Services' status, least recently
// changed Service first, and returns how many could not be (each reported to
// failed). When Services claim one IP but may no longer share it, the one whose
// spec changed last is the one that introduced the conflict: it loses the IP
// and its reconcile gives it a new one, as the running controller would have
// done when the change arrived. Ties go to the older Service, then the name.
func restore(alloc *allocator.Allocator, items []restoreItem, failed func(restoreItem, error)) int {
	sort.Slice(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if !a.changed.Equal(b.changed) {
			return a.changed.Before(b.changed)
		}
		if !a.created.Equal(b.created) {
			return a.created.Before(b.created)
		}
		return a.req.Key < b.req.Key
	})
	conflicts := 0
	for _, it := range items {
		if _, err := alloc.Restore(it.req, it.ips); err != nil {
			conflicts++
			failed(it, err)
		}
	}
	return conflicts
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

// CompactManagedFields replaces a Service's managedFields by the one entry
// LastChange needs (none when it is the creation time), so cached Services
// keep what a rebuild reads from them without the field sets.
// LastChange(svc) is the same before and after.
func CompactManagedFields(svc *corev1.Service) {
	t := LastChange(svc)
	if t.Equal(svc.CreationTimestamp.Time) {
		svc.ManagedFields = nil
		return
	}
	svc.ManagedFields = []metav1.ManagedFieldsEntry{{Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: t}}}
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

	var items []restoreItem
	listed, source := 0, "live List"
	if store, cacheRV, ok := c.cacheCoversLease(ctx, leaseRV); ok {
		// The cached objects themselves, read only (no copies).
		source = "cache at resourceVersion " + cacheRV
		for _, o := range store.List() {
			svc, ok := o.(*corev1.Service)
			if !ok {
				continue
			}
			listed++
			if !Handles(svc, c.opts.LoadBalancerClass) {
				continue
			}
			if it, ok := restoreItemFor(svc); ok {
				items = append(items, it)
			}
		}
	} else if err := c.listLive(ctx, func(svc *corev1.Service) {
		listed++
		if !Handles(svc, c.opts.LoadBalancerClass) {
			return
		}
		if it, ok := restoreItemFor(svc); ok {
			items = append(items, it)
		}
	}); err != nil {
		return err
	}
	conflicts := restore(c.alloc, items, func(it restoreItem, err error) {
		c.log.Warn("status IP not restored; the Service will get a new one", "service", it.req.Key,
			"ips", ipStrings(it.ips), "error", err.Error())
	})
	c.log.Info("allocations rebuilt", "services", listed, "from", source, "restored", len(items)-conflicts,
		"conflicts", conflicts, "pools", len(pools.Items), "took", time.Since(start).String())
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
	cacheRV := v.LastSyncResourceVersion()
	return v.GetStore(), cacheRV, ResourceVersionAtLeast(cacheRV, leaseRV)
}

// ResourceVersionAtLeast reports whether resourceVersion a is known to be
// at or after b. Both must be the decimal integers kube-apiserver hands out
// (etcd revisions); anything else is not comparable and yields false.
func ResourceVersionAtLeast(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x >= y
}
