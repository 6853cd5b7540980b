package reconciler

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
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

// rebuild runs once leadership is held: it loads the pools and re-registers
// every Service's current IPs from a live (consistent) List, and only then
// lets reconciles run. Pools and conflicting claims are decided as the running
// controller decides them (DecidePools, restore).
func (c *Controller) rebuild(ctx context.Context) error {
	start := time.Now()
	if !c.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("rebuild: cache did not sync")
	}
	var pools v1beta1.IPAddressPoolList
	if err := c.reader.List(ctx, &pools, client.InNamespace(c.opts.PoolNamespace)); err != nil {
		return fmt.Errorf("rebuild: list IPAddressPools: %w", err)
	}
	// The same verdict the running controller reaches (DecidePools).
	if err := c.applyPools(ctx, pools.Items); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}

	var items []restoreItem
	opts := []client.ListOption{client.Limit(500)}
	listed := 0
	for {
		var list corev1.ServiceList
		if err := c.reader.List(ctx, &list, opts...); err != nil {
			return fmt.Errorf("rebuild: list Services: %w", err)
		}
		listed += len(list.Items)
		for i := range list.Items {
			svc := &list.Items[i]
			if !Handles(svc, c.opts.LoadBalancerClass) {
				continue
			}
			if it, ok := restoreItemFor(svc); ok {
				items = append(items, it)
			}
		}
		if list.Continue == "" {
			break
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
	conflicts := restore(c.alloc, items, func(it restoreItem, err error) {
		c.log.Warn("status IP not restored; the Service will get a new one", "service", it.req.Key,
			"ips", ipStrings(it.ips), "error", err.Error())
	})
	c.log.Info("allocations rebuilt", "services", listed, "restored", len(items)-conflicts,
		"conflicts", conflicts, "pools", len(pools.Items), "took", time.Since(start).String())
	close(c.ready)
	c.kickFlush()
	return nil
}
