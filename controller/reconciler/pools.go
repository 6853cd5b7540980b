package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
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
)

// PoolConfig converts an IPAddressPool into the allocator's configuration;
// a bad selector yields an error naming the field.
func PoolConfig(p *v1beta1.IPAddressPool) (allocator.PoolConfig, error) {
	cfg := allocator.PoolConfig{
		Name:          p.Name,
		Addresses:     p.Spec.Addresses,
		AutoAssign:    p.Spec.AutoAssign == nil || *p.Spec.AutoAssign,
		AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
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

func (c *Controller) reconcilePool(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := c.waitReady(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if ns := c.opts.PoolNamespace; ns != "" && req.Namespace != ns {
		return reconcile.Result{}, nil
	}
	p := &v1beta1.IPAddressPool{}
	err := c.client.Get(ctx, req.NamespacedName, p)
	if err != nil && !apierrors.IsNotFound(err) {
		return reconcile.Result{}, fmt.Errorf("get IPAddressPool %s: %w", req, err)
	}
	if apierrors.IsNotFound(err) || p.DeletionTimestamp != nil {
		wasActive := c.alloc.HasPool(req.Name)
		ch := c.alloc.DeletePool(req.Name)
		c.mu.Lock()
		delete(c.poolErr, req.Name)
		c.mu.Unlock()
		c.m.AddressesTotal.DeletePartialMatch(map[string]string{"pool": req.Name})
		c.m.AddressesInUse.DeletePartialMatch(map[string]string{"pool": req.Name})
		if wasActive {
			c.log.Info("IPAddressPool removed", "pool", req.String(), "allocationsKept", len(ch.Orphaned))
			c.reportOrphans(ctx, nil, req.Name, ch)
			c.retryInvalidPools()
		}
		return reconcile.Result{}, nil
	}

	cfg, err := PoolConfig(p)
	var ch allocator.PoolChange
	if err == nil {
		ch, err = c.alloc.SetPool(cfg)
	}
	if err != nil {
		msg := fmt.Sprintf("IPAddressPool %s/%s: %v", p.Namespace, p.Name, err)
		c.log.Warn("invalid IPAddressPool", "pool", req.String(), "error", err.Error())
		c.recorder.Event(p, corev1.EventTypeWarning, ReasonInvalidConfig, msg)
		c.m.ConfigErrors.WithLabelValues("IPAddressPool").Inc()
		c.mu.Lock()
		c.poolErr[p.Name] = err.Error()
		c.mu.Unlock()
		c.markDirty(p.Name)
		c.kickFlush()
		return reconcile.Result{}, nil
	}
	c.mu.Lock()
	prevErr, known := c.poolErr[p.Name]
	c.poolErr[p.Name] = ""
	c.mu.Unlock()
	if !known || prevErr != "" {
		c.log.Info("IPAddressPool accepted", "pool", req.String(), "addresses", strings.Join(p.Spec.Addresses, ","))
	}
	c.reportOrphans(ctx, p, p.Name, ch)
	for _, h := range ch.Adopted {
		c.log.Info("allocation back inside a pool", "pool", p.Name, "ip", h.IP.String(), "services", h.Services)
		for _, s := range h.Services {
			c.enqueueService(s)
		}
	}
	c.markDirty(p.Name)
	c.kickFlush()
	c.retryPending()
	c.retryInvalidPools()
	return reconcile.Result{}, nil
}

// reportOrphans emits Events for allocations a pool change left outside
// every pool; they are kept, not moved.
func (c *Controller) reportOrphans(ctx context.Context, p *v1beta1.IPAddressPool, name string, ch allocator.PoolChange) {
	if len(ch.Orphaned) == 0 {
		return
	}
	msg := fmt.Sprintf("%d allocated IP(s) are no longer in IPAddressPool %q; they stay with their Services and are not reassigned", len(ch.Orphaned), name)
	c.log.Warn("allocations left outside every pool", "pool", name, "count", len(ch.Orphaned))
	if p != nil {
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

// retryInvalidPools re-enqueues rejected pools: a change elsewhere (a pool
// removed or shrunk) may have cleared their overlap.
func (c *Controller) retryInvalidPools() {
	c.mu.Lock()
	var names []string
	for n, e := range c.poolErr {
		if e != "" {
			names = append(names, n)
		}
	}
	c.mu.Unlock()
	for _, n := range names {
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: c.opts.PoolNamespace, Name: n}}
		select {
		case c.poolEvents <- event.GenericEvent{Object: p}:
		default:
		}
	}
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
		for f, fam := range []string{"IPv4", "IPv6"} {
			c.m.AddressesTotal.WithLabelValues(name, fam).Set(float64(s.Total[f]))
			c.m.AddressesInUse.WithLabelValues(name, fam).Set(float64(s.Assigned[f]))
		}
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
		if c.alloc.HasPool(name) {
			valid.Message += " (the previous valid addresses stay in use)"
		}
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
