package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/internal/validation"
)

// PoolConfig converts an IPAddressPool into the allocator's configuration;
// a bad spec (validation.Pool: addresses, avoidBuggyIPs, selectors) yields an
// error naming the field.
func PoolConfig(p *v1beta1.IPAddressPool) (allocator.PoolConfig, error) {
	cfg := allocator.PoolConfig{
		Name:          p.Name,
		Addresses:     p.Spec.Addresses,
		AutoAssign:    p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
	}
	if _, err := validation.Pool(p); err != nil {
		return cfg, err
	}
	if at := p.Spec.AllocateTo; at != nil {
		sel := &allocator.Selection{Priority: at.Priority, Namespaces: at.Namespaces}
		conv := func(field string, in []metav1.LabelSelector) ([]labels.Selector, error) {
			var out []labels.Selector
			for i := range in {
				s, err := metav1.LabelSelectorAsSelector(&in[i])
				if err != nil {
					return nil, &allocator.FieldError{Field: fmt.Sprintf("spec.serviceAllocation.%s[%d]", field, i), Detail: err.Error()}
				}
				out = append(out, s)
			}
			return out, nil
		}
		var err error
		if sel.NamespaceSelectors, err = conv("namespaceSelectors", at.NamespaceSelectors); err != nil {
			return cfg, err
		}
		if sel.ServiceSelectors, err = conv("serviceSelectors", at.ServiceSelectors); err != nil {
			return cfg, err
		}
		cfg.AllocateTo = sel
	}
	return cfg, nil
}

// DecidePools decides, from every IPAddressPool of the namespace, which pools
// the allocator uses (accepted, in validation.PoolPrecedes order) and why the
// others are rejected. It depends on the objects alone, never on the order
// events arrived in or on what was accepted before, so a restarted controller
// (rebuild) decides exactly as the running one: a pool is rejected when its
// newest spec is invalid (an earlier valid version is not kept: it is stored
// nowhere a restart could read it back) or when it overlaps an older pool
// (validation.ResolveOverlaps, the rule the speaker applies too). Allocations
// in a rejected pool stay with their Services.
func DecidePools(pools []v1beta1.IPAddressPool) (accepted []allocator.PoolConfig, rejected map[string]error) {
	rejected = map[string]error{}
	cfgs := map[string]allocator.PoolConfig{}
	var spans []validation.PoolSpan
	for i := range pools {
		p := &pools[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		cfg, err := PoolConfig(p)
		if err != nil {
			rejected[p.Name] = err
			continue
		}
		rs, _ := allocator.ParseAddresses(p.Spec.Addresses) // valid: PoolConfig checked
		cfgs[p.Name] = cfg
		spans = append(spans, validation.PoolSpan{Name: p.Name, Created: p.CreationTimestamp.Time, Ranges: rs})
	}
	losers := validation.ResolveOverlaps(spans)
	sort.Slice(spans, func(i, j int) bool { return validation.PoolPrecedes(spans[i], spans[j]) })
	for _, sp := range spans {
		if e := losers[sp.Name]; e != nil {
			rejected[sp.Name] = e
			continue
		}
		accepted = append(accepted, cfgs[sp.Name])
	}
	return accepted, rejected
}

// reconcilePool recomputes the whole pool set whenever one pool changes: a
// change to one pool can decide an overlap for another.
func (c *Controller) reconcilePool(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := c.waitReady(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if ns := c.opts.PoolNamespace; ns != "" && req.Namespace != ns {
		return reconcile.Result{}, nil
	}
	var list v1beta1.IPAddressPoolList
	if err := c.client.List(ctx, &list, client.InNamespace(c.opts.PoolNamespace)); err != nil {
		return reconcile.Result{}, fmt.Errorf("list IPAddressPools: %w", err)
	}
	return reconcile.Result{}, c.applyPools(ctx, list.Items)
}

// applyPools puts DecidePools' verdict into the allocator and reports what
// changed: rejections (Event, condition, metric), allocations left outside
// every pool, allocations a pool took back.
func (c *Controller) applyPools(ctx context.Context, pools []v1beta1.IPAddressPool) error {
	accepted, rejected := DecidePools(pools)
	changes, err := c.alloc.SetPools(accepted)
	if err != nil {
		// DecidePools checked everything SetPools does; this is a bug.
		c.log.Error("pool set not applied", "error", err.Error())
		return fmt.Errorf("apply IPAddressPools: %w", err)
	}
	c.m.ConfigApplied(len(rejected) == 0)
	if c.cfgState != nil {
		var lines []string
		for name, err := range rejected {
			lines = append(lines, fmt.Sprintf("IPAddressPool %s/%s: %v", c.opts.PoolNamespace, name, err))
		}
		c.cfgState.Set(lines)
	}
	if len(rejected) > 0 {
		c.m.UpdateErrors.Inc()
	}
	byName := map[string]*v1beta1.IPAddressPool{}
	for i := range pools {
		byName[pools[i].Name] = &pools[i]
	}
	c.mu.Lock()
	var newlyBad, newlyGood []string
	for name, p := range byName {
		msg := ""
		if e := rejected[name]; e != nil {
			msg = e.Error()
		} else if p.DeletionTimestamp != nil {
			continue
		}
		prev, known := c.poolErr[name]
		c.poolErr[name] = msg
		switch {
		case msg != "" && msg != prev:
			newlyBad = append(newlyBad, name)
		case msg == "" && (!known || prev != ""):
			newlyGood = append(newlyGood, name)
		}
		if msg != prev || !known {
			c.dirty[name] = struct{}{}
		}
	}
	for name := range c.poolErr {
		if p := byName[name]; p == nil || p.DeletionTimestamp != nil {
			delete(c.poolErr, name)
		}
	}
	c.mu.Unlock()
	sort.Strings(newlyBad)
	for _, name := range newlyBad {
		p, err := byName[name], rejected[name]
		c.log.Warn("invalid IPAddressPool", "pool", p.Namespace+"/"+name, "error", err.Error())
		c.recorder.Event(p, corev1.EventTypeWarning, ReasonInvalidConfig, fmt.Sprintf("IPAddressPool %s/%s: %v", p.Namespace, name, err))
		c.m.ConfigErrors.WithLabelValues("IPAddressPool").Inc()
	}
	for _, name := range newlyGood {
		c.log.Info("IPAddressPool accepted", "pool", c.opts.PoolNamespace+"/"+name, "addresses", strings.Join(byName[name].Spec.Addresses, ","))
	}
	for _, name := range slices.Sorted(maps.Keys(changes)) {
		ch := changes[name]
		c.reportOrphans(ctx, byName[name], name, ch)
		for _, h := range ch.Adopted {
			c.log.Info("allocation back inside a pool", "pool", name, "ip", h.IP.String(), "services", h.Services)
			for _, s := range h.Services {
				c.enqueueService(s)
			}
		}
		c.markDirty(name)
	}
	c.kickFlush()
	if len(changes) > 0 || len(newlyGood) > 0 {
		c.retryPending()
	}
	return nil
}

// reportOrphans emits Events for allocations a pool change left outside
// every pool; they are kept, not moved.
func (c *Controller) reportOrphans(ctx context.Context, p *v1beta1.IPAddressPool, name string, ch allocator.PoolChange) {
	if len(ch.Orphaned) == 0 {
		return
	}
	msg := fmt.Sprintf("%d allocated IP(s) are no longer in IPAddressPool %q; they stay with their Services and are not reassigned", len(ch.Orphaned), name)
	c.log.Warn("allocations left outside every pool", "pool", name, "count", len(ch.Orphaned))
	if p != nil && p.DeletionTimestamp == nil {
		c.recorder.Event(p, corev1.EventTypeWarning, ReasonOutsidePool, msg)
	}
	for _, h := range ch.Orphaned {
		for _, s := range h.Services {
			c.enqueueService(s) // its reconcile emits IPNotInPool once
		}
	}
}

func (c *Controller) enqueueService(key string) {
	ns, name, _ := strings.Cut(key, "/")
	c.svcEvents <- event.GenericEvent{Object: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}}
}

func (c *Controller) kickFlush() {
	select {
	case c.flushSignal <- struct{}{}:
	default:
	}
}

// flushLoop writes pool status and gauges for dirty pools, at most once per
// StatusInterval (sooner after a pool change).
func (c *Controller) flushLoop(ctx context.Context) error {
	if err := c.waitReady(ctx); err != nil {
		return nil
	}
	t := time.NewTicker(c.opts.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.flushSignal:
		}
		c.flushPools(ctx)
	}
}

func (c *Controller) flushPools(ctx context.Context) {
	c.mu.Lock()
	dirty := c.dirty
	c.dirty = map[string]struct{}{}
	c.mu.Unlock()
	c.m.OutsidePools.Set(float64(c.alloc.Outside()))
	for name := range dirty {
		if err := c.writePoolStatus(ctx, name); err != nil {
			c.log.Warn("pool status not written", "pool", name, "error", err.Error())
			c.markDirty(name)
		}
	}
}

func (c *Controller) writePoolStatus(ctx context.Context, name string) error {
	p := &v1beta1.IPAddressPool{}
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: c.opts.PoolNamespace, Name: name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	st := v1beta1.IPAddressPoolStatus{Conditions: append([]metav1.Condition(nil), p.Status.Conditions...)}
	if s, ok := c.alloc.Stats(name); ok {
		st.AssignedIPv4, st.AssignedIPv6 = s.Assigned[allocator.IPv4], s.Assigned[allocator.IPv6]
		st.AvailableIPv4, st.AvailableIPv6 = s.Available[allocator.IPv4], s.Available[allocator.IPv6]
		outside := metav1.Condition{Type: ConditionOutsidePool, Status: metav1.ConditionFalse, Reason: conditionReasonNone,
			Message: "every allocation from this pool lies inside its addresses", ObservedGeneration: p.Generation}
		if s.Outside > 0 {
			outside.Status, outside.Reason = metav1.ConditionTrue, conditionReasonOutside
			outside.Message = fmt.Sprintf("%d allocated IP(s) lie outside spec.addresses after a change; they are kept, not reassigned", s.Outside)
		}
		meta.SetStatusCondition(&st.Conditions, outside)
	}
	c.mu.Lock()
	perr := c.poolErr[name]
	c.mu.Unlock()
	valid := metav1.Condition{Type: ConditionValid, Status: metav1.ConditionTrue, Reason: conditionReasonOK,
		Message: "addresses accepted", ObservedGeneration: p.Generation}
	if perr != "" {
		valid.Status, valid.Reason, valid.Message = metav1.ConditionFalse, ReasonInvalidConfig, perr
	}
	meta.SetStatusCondition(&st.Conditions, valid)
	if equality.Semantic.DeepEqual(st, p.Status) {
		return nil
	}
	body, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	target := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	if err := c.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patch status of IPAddressPool %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}
