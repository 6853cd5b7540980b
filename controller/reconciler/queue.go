package reconciler

import (
	"context"
	"maps"
	"net/netip"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// Queue priorities of Service reconciles.
const (
	// PriorityWork is for a Service that may need a write.
	PriorityWork = 0
	// PrioritySettled is for a Service that, as far as the object tells,
	// already holds its IP (or has none to give back): after a restart,
	// thousands of these must not delay one that waits for an IP. They are
	// still reconciled, only later.
	PrioritySettled = handler.LowPriority
)

// Settled reports whether a Service looks in shape from the object alone:
// handled and holding status IPs (and the pool annotation, when written),
// or not handled and holding none. Whether those IPs are its allocation
// the reconcile decides; this only orders the work.
func Settled(svc *Svc, class string, annotate bool) bool {
	if !svc.handles(class) {
		return len(svc.Ingress) == 0
	}
	if !slices.ContainsFunc(svc.Ingress, func(ip string) bool { _, err := netip.ParseAddr(ip); return err == nil }) {
		return false
	}
	pool, _ := svc.Annotation(v1beta1.AnnotationIPAllocatedFrom)
	return !annotate || pool != ""
}

// requestUnchanged reports whether an update left what a Service asks for
// as it was: same spec generation, labels and annotations (status writes,
// our own included, change none of them).
func requestUnchanged(old, cur *Svc) bool {
	return old.Generation == cur.Generation && maps.Equal(old.Labels, cur.Labels) && slices.Equal(old.Annotations, cur.Annotations)
}

// ServicePriority is the queue priority of a Service event: old is nil for
// a create (initial says whether it came from the informer's first List),
// cur nil for a delete.
func ServicePriority(old, cur *Svc, initial bool, class string, annotate bool) int {
	switch {
	case cur == nil:
		return PriorityWork
	case old == nil && initial && Settled(cur, class, annotate):
		return PrioritySettled
	case old != nil && requestUnchanged(old, cur) && Settled(cur, class, annotate):
		return PrioritySettled
	}
	return PriorityWork
}

// serviceEvents enqueues Service events with ServicePriority (on a
// priority queue; on a plain queue priorities are ignored).
func (c *Controller) serviceEvents() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], svc *Svc, prio int) {
		req := reconcile.Request{NamespacedName: keyOfObject(svc.Namespace, svc.Name)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: &prio}, req)
			return
		}
		q.Add(req)
	}
	class, annotate := c.opts.LoadBalancerClass, c.opts.PoolAnnotation
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if svc, ok := e.Object.(*Svc); ok {
				add(q, svc, ServicePriority(nil, svc, e.IsInInitialList, class, annotate))
			}
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			old, ok1 := e.ObjectOld.(*Svc)
			cur, ok2 := e.ObjectNew.(*Svc)
			if ok1 && ok2 {
				add(q, cur, ServicePriority(old, cur, false, class, annotate))
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if e.Object != nil {
				q.Add(reconcile.Request{NamespacedName: keyOfObject(e.Object.GetNamespace(), e.Object.GetName())})
			}
		},
	}
}

func keyOfObject(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
