package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

func (c *Controller) reconcileService(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if err := c.waitReady(ctx); err != nil {
		return reconcile.Result{}, err
	}
	key := req.Namespace + "/" + req.Name
	svc, err := c.cachedService(ctx, key)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("get Service %s: %w", key, err)
	}
	if svc == nil {
		c.release(key, nil)
		return reconcile.Result{}, nil
	}
	if !Handles(svc, c.opts.LoadBalancerClass) {
		released := c.release(key, svc)
		// A Service that stopped being a LoadBalancer loses the IP we gave it.
		if released && svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 {
			_, _, err := c.writeShape(ctx, svc, true, nil, "")
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, nil
	}

	r, err := RequestFor(svc, c.namespaceLabels(ctx, svc.Namespace))
	if err != nil {
		c.m.UpdateErrors.Inc()
		if c.setPending(key, svc.Namespace, err.Error()) {
			c.log.Warn("invalid Service", "service", key, "error", err.Error())
			c.recorder.Event(svc, corev1.EventTypeWarning, ReasonInvalidRequest, err.Error())
			c.m.ConfigErrors.WithLabelValues("Service").Inc()
		}
		// Keep whatever the Service holds; nothing else to do until it changes.
		if as, ok := c.alloc.Lookup(key); ok {
			return reconcile.Result{}, c.syncService(ctx, svc, as)
		}
		return reconcile.Result{}, nil
	}

	before, _ := c.alloc.Lookup(key)
	as, changed, err := c.alloc.Assign(r)
	if err != nil {
		var ae *allocator.Error
		reason := "Unknown"
		if errors.As(err, &ae) {
			reason = string(ae.Reason)
		}
		c.m.AllocationErrors.WithLabelValues(reason).Inc()
		if c.setPending(key, svc.Namespace, err.Error()) {
			c.log.Warn("allocation failed", "service", key, "reason", reason, "error", err.Error())
			c.recorder.Event(svc, corev1.EventTypeWarning, ReasonAllocationFailed, "Failed to allocate IP for "+key+": "+err.Error())
		}
		// With nothing allocated, IPs left in status belong to nobody (or to
		// another Service): clear them.
		return reconcile.Result{}, c.syncService(ctx, svc, as)
	}
	c.setPending(key, svc.Namespace, "")
	if changed {
		// The Event is recorded before the write it announces: the span
		// starts here so that the Event waits for it.
		done := c.writing()
		defer done()
		c.markDirty(before.Pool, as.Pool)
		c.m.Allocations.WithLabelValues(as.Pool).Inc()
		c.log.Info("IP allocated", "service", key, "ips", ipStrings(as.IPs), "pool", as.Pool)
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonIPAllocated, "Assigned IP %q", ipStrings(as.IPs))
	}
	c.reportOutOfPool(svc, key, as)
	return reconcile.Result{}, c.syncService(ctx, svc, as)
}

// release drops a Service's allocation; svc (if it still exists) receives
// an Event.
func (c *Controller) release(key string, svc *corev1.Service) bool {
	c.setPending(key, "", "")
	c.forgetWrites(key)
	c.mu.Lock()
	delete(c.reported, key)
	c.mu.Unlock()
	as, ok := c.alloc.Release(key)
	if !ok {
		return false
	}
	c.markDirty(as.Pool)
	c.m.Releases.Inc()
	// A Service waiting for an address may now get this one.
	c.retryPending()
	c.log.Info("IP released", "service", key, "ips", ipStrings(as.IPs))
	if svc != nil {
		c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonIPReleased, "Released IP %q", ipStrings(as.IPs))
	}
	return true
}

// reportOutOfPool reports, once per change, IPs kept outside every pool.
func (c *Controller) reportOutOfPool(svc *corev1.Service, key string, as allocator.Assignment) {
	msg := ""
	if len(as.OutOfPool) > 0 {
		msg = fmt.Sprintf("IP %q lies in no IPAddressPool; it is kept, not reassigned", ipStrings(as.OutOfPool))
	}
	c.mu.Lock()
	prev := c.reported[key]
	if msg == "" {
		delete(c.reported, key)
	} else {
		c.reported[key] = msg
	}
	c.mu.Unlock()
	if msg != "" && msg != prev {
		c.log.Warn("IP outside every pool", "service", key, "ips", ipStrings(as.OutOfPool))
		c.recorder.Event(svc, corev1.EventTypeWarning, ReasonIPNotInPool, msg)
	}
}

// syncService writes status and the pool annotation when they differ from
// the allocation, both in one request; a Service already in shape costs no
// API call, and neither does one whose cached copy is older than our own
// last writes to it (see Written).
func (c *Controller) syncService(ctx context.Context, svc *corev1.Service, as allocator.Assignment) error {
	key := ServiceKey(svc)
	c.mu.Lock()
	w := c.written[key]
	c.mu.Unlock()
	cur, fresh := w.View(svc)
	if fresh {
		c.forgetWrites(key)
		w = Written{}
	}
	writeIPs := !slices.Equal(cur.IPs, as.IPs)
	pool := ""
	if c.opts.PoolAnnotation && as.Pool != "" && cur.Pool != as.Pool {
		pool = as.Pool
	}
	if !writeIPs && pool == "" {
		return nil
	}
	got, newRV, err := c.writeShape(ctx, svc, writeIPs, as.IPs, pool)
	if err != nil {
		return err
	}
	if newRV != "" {
		// got is the object as the patch left it (both fields, whichever
		// were written): the truth at newRV.
		w = w.Wrote(svc.ResourceVersion, newRV, got)
		c.mu.Lock()
		c.written[key] = w
		c.mu.Unlock()
	}
	return nil
}

// writeShape writes the Service's status IPs (when writeIPs) and pool
// annotation ("": unchanged) in one merge patch of the status subresource:
// the apiserver keeps the metadata a status write brings (only the spec is
// reset), so the annotation needs no request of its own. It returns what
// the answer shows of both and its resourceVersion ("" when the Service is
// gone). Should an apiserver drop the annotation from a status write, the
// annotation is patched on the object itself, and from then on always so.
func (c *Controller) writeShape(ctx context.Context, svc *corev1.Service, writeIPs bool, ips []netip.Addr, pool string) (Shape, string, error) {
	patch := map[string]any{}
	if writeIPs {
		var ing []ingressIP // none: null, which removes the list
		for _, ip := range ips {
			ing = append(ing, ingressIP{IP: ip.String()})
		}
		patch["status"] = map[string]any{"loadBalancer": map[string]any{"ingress": ing}}
	}
	annotation := map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1beta1.AnnotationIPAllocatedFrom: pool}}}
	separate := pool != "" && c.annotateApart.Load()
	if pool != "" && !separate {
		patch["metadata"] = annotation["metadata"]
	}
	target := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	if len(patch) > 0 || separate {
		defer c.writing()()
	}
	if len(patch) > 0 {
		body, _ := json.Marshal(patch)
		if err := c.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); err != nil {
			if apierrors.IsNotFound(err) {
				return Shape{}, "", nil
			}
			return Shape{}, "", fmt.Errorf("write status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
		if pool != "" && !separate && target.Annotations[v1beta1.AnnotationIPAllocatedFrom] != pool {
			c.log.Warn("the apiserver dropped the pool annotation from a status write; writing it apart from now on", "service", ServiceKey(svc))
			c.annotateApart.Store(true)
			separate = true
		}
	}
	if separate {
		body, _ := json.Marshal(annotation)
		if err := c.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldManager)); err != nil {
			if apierrors.IsNotFound(err) {
				return Shape{}, "", nil
			}
			if apierrors.IsForbidden(err) {
				// kube-apiserver keeps the annotation in the status write, so
				// the chart grants no patch on services (least privilege).
				return Shape{}, "", fmt.Errorf("annotate Service %s/%s: this apiserver drops metadata from status writes and the controller may not patch Services: grant patch on services or run with --pool-annotation=false: %w", svc.Namespace, svc.Name, err)
			}
			return Shape{}, "", fmt.Errorf("annotate Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return Shape{IPs: StatusIPs(target), Pool: target.Annotations[v1beta1.AnnotationIPAllocatedFrom]}, target.ResourceVersion, nil
}

func (c *Controller) forgetWrites(key string) {
	c.mu.Lock()
	delete(c.written, key)
	c.mu.Unlock()
}

// Shape is what the controller writes on a Service: its status IPs and the
// pool annotation.
type Shape struct {
	IPs  []netip.Addr
	Pool string
}

// Written remembers the controller's own writes to one Service until the
// cache shows their result: the resourceVersions the object had before and
// between them, the one the last produced, and what they left. A cached
// copy at one of the earlier versions is known to predate our writes, so it
// is read as our writes left it rather than written again (the update event
// of the status write often arrives before the annotation write's).
// resourceVersions are only compared for equality.
type Written struct {
	Stale  []string
	Latest string
	Shape  Shape
}

// View returns the Service's shape as far as the controller knows, and
// whether the cached copy is at or past our last write (the record can go).
func (w Written) View(svc *corev1.Service) (Shape, bool) {
	seen := Shape{IPs: StatusIPs(svc), Pool: svc.Annotations[v1beta1.AnnotationIPAllocatedFrom]}
	if w.Latest == "" {
		return seen, false
	}
	if slices.Contains(w.Stale, svc.ResourceVersion) {
		return w.Shape, false
	}
	// Our last write's result, or a later change by anyone: the cache is
	// the truth again.
	return seen, true
}

// Wrote records a write that turned version before into after, leaving s.
func (w Written) Wrote(before, after string, s Shape) Written {
	if after == "" {
		// Gone, or no version came back: nothing to recognise the result by.
		return Written{}
	}
	stale := append(slices.Clone(w.Stale), before)
	if w.Latest != "" && w.Latest != before {
		stale = append(stale, w.Latest)
	}
	return Written{Stale: stale, Latest: after, Shape: s}
}

type ingressIP struct {
	IP string `json:"ip"`
}

// namespaceLabels reads a namespace's labels from the metadata cache.
func (c *Controller) namespaceLabels(ctx context.Context, ns string) map[string]string {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.client.Get(ctx, client.ObjectKey{Name: ns}, m); err != nil {
		return nil
	}
	return m.Labels
}

func ipStrings(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}
