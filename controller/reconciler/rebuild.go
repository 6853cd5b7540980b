package reconciler

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

// restoreItem is one Service's allocation found in its status.
type restoreItem struct {
	created time.Time
	req     allocator.Request
	ips     []netip.Addr
}

// rebuild runs once leadership is held: it loads the pools and re-registers
// every Service's current IPs from a live (consistent) List, and only then
// lets reconciles run. Older Services win a (corrupt) duplicate.
func (c *Controller) rebuild(ctx context.Context) error {
	start := time.Now()
	if !c.cache.WaitForCacheSync(ctx) {
		return fmt.Errorf("rebuild: cache did not sync")
	}
	var pools v1beta1.IPAddressPoolList
	if err := c.reader.List(ctx, &pools, client.InNamespace(c.opts.PoolNamespace)); err != nil {
		return fmt.Errorf("rebuild: list IPAddressPools: %w", err)
	}
	// Pools the previous leader accepted go first, so an overlap is resolved
	// the same way across restarts (creation times have 1 s resolution).
	sort.Slice(pools.Items, func(i, j int) bool {
		a, b := &pools.Items[i], &pools.Items[j]
		if va, vb := wasAccepted(a), wasAccepted(b); va != vb {
			return va
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	for i := range pools.Items {
		p := &pools.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		cfg, err := PoolConfig(p)
		if err == nil {
			_, err = c.alloc.SetPool(cfg)
		}
		c.mu.Lock()
		if err != nil {
			c.poolErr[p.Name] = err.Error() // the pool reconcile reports it
		} else {
			c.poolErr[p.Name] = ""
		}
		c.dirty[p.Name] = struct{}{}
		c.mu.Unlock()
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
			ips := StatusIPs(svc)
			if len(ips) == 0 {
				continue
			}
			// A malformed request annotation does not matter here: the
			// status is what the Service holds. Keep only what sharing
			// checks need, so the listed pages can be freed.
			r, _ := RequestFor(svc, nil)
			r.Labels, r.IPs, r.Pool = nil, nil, ""
			r.Selector = maps.Clone(r.Selector)
			items = append(items, restoreItem{created: svc.CreationTimestamp.Time, req: r, ips: ips})
		}
		if list.Continue == "" {
			break
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
	sort.Slice(items, func(i, j int) bool {
		if !items[i].created.Equal(items[j].created) {
			return items[i].created.Before(items[j].created)
		}
		return items[i].req.Key < items[j].req.Key
	})
	conflicts := 0
	for _, it := range items {
		if _, err := c.alloc.Restore(it.req, it.ips); err != nil {
			conflicts++
			c.log.Warn("status IP not restored; the Service will get a new one", "service", it.req.Key,
				"ips", ipStrings(it.ips), "error", err.Error())
		}
	}
	c.log.Info("allocations rebuilt", "services", listed, "restored", len(items)-conflicts,
		"conflicts", conflicts, "pools", len(pools.Items), "took", time.Since(start).String())
	close(c.ready)
	c.kickFlush()
	return nil
}

func wasAccepted(p *v1beta1.IPAddressPool) bool {
	return meta.IsStatusConditionTrue(p.Status.Conditions, ConditionValid)
}
