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
	svc := &corev1.Service{}
	if err := c.client.Get(ctx, req.NamespacedName, svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("get Service %s: %w", key, err)
		}
		c.release(key, nil)
		return reconcile.Result{}, nil
	}
	if !Handles(svc, c.opts.LoadBalancerClass) {
		released := c.release(key, svc)
		// A Service that stopped being a LoadBalancer loses the IP we gave it.
		if released && svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return reconcile.Result{}, c.writeStatus(ctx, svc, nil)
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

// syncService writes status (and the pool annotation) when they differ
// from the allocation; a Service already in shape costs no API call.
func (c *Controller) syncService(ctx context.Context, svc *corev1.Service, as allocator.Assignment) error {
	if !slices.Equal(StatusIPs(svc), as.IPs) {
		if err := c.writeStatus(ctx, svc, as.IPs); err != nil {
			return err
		}
	}
	if c.opts.PoolAnnotation && as.Pool != "" && svc.Annotations[v1beta1.AnnotationIPAllocatedFrom] != as.Pool {
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"annotations": map[string]string{v1beta1.AnnotationIPAllocatedFrom: as.Pool}}})
		target := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
		if err := c.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, body), client.FieldOwner(FieldManager)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("annotate Service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return nil
}

type ingressIP struct {
	IP string `json:"ip"`
}

// writeStatus sets status.loadBalancer.ingress to ips (nil clears it). It
// patches a fresh object, never the cached one.
func (c *Controller) writeStatus(ctx context.Context, svc *corev1.Service, ips []netip.Addr) error {
	var ing []ingressIP
	for _, ip := range ips {
		ing = append(ing, ingressIP{IP: ip.String()})
	}
	body, _ := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{"ingress": ing}}})
	target := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	if err := c.client.Status().Patch(ctx, target, client.RawPatch(types.MergePatchType, body)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("write status of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
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
