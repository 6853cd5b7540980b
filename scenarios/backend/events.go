package backend

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeServiceEvents lists the Events whose involved object is the Service,
// for backends that reach the apiserver with client-go (both do).
func KubeServiceEvents(ctx context.Context, kube kubernetes.Interface, namespace, name string) ([]ServiceEvent, error) {
	list, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name,
	})
	if err != nil {
		return nil, fmt.Errorf("events of Service %s/%s: %w", namespace, name, err)
	}
	out := make([]ServiceEvent, 0, len(list.Items))
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		out = append(out, ServiceEvent{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: last})
	}
	return out, nil
}

// Address families of a Service's address (corev1.IPFamily's values); an
// empty family means any.
const (
	FamilyIPv4 = "IPv4"
	FamilyIPv6 = "IPv6"
)

// OfFamily reports whether a is of family ("" matches any address).
func OfFamily(a netip.Addr, family string) bool {
	switch family {
	case FamilyIPv4:
		return a.Is4()
	case FamilyIPv6:
		return a.Is6()
	}
	return a.IsValid()
}

// KubeExternalIP waits until the Service has an EXTERNAL-IP of family (""
// for its first one, whatever the family), for backends that reach the
// apiserver with client-go (both do). alive, when not nil, is asked on
// every poll and ends the wait with its error (a process of the backend
// died: no address will come).
func KubeExternalIP(ctx context.Context, kube kubernetes.Interface, namespace, service, family string, timeout time.Duration, alive func() error) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	what := "an EXTERNAL-IP"
	if family != "" {
		what = "an " + family + " EXTERNAL-IP"
	}
	var last error
	for {
		if alive != nil {
			if err := alive(); err != nil {
				return netip.Addr{}, fmt.Errorf("Service %s/%s: waiting for %s: %w", namespace, service, what, err)
			}
		}
		s, err := kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
		if err == nil {
			for _, in := range s.Status.LoadBalancer.Ingress {
				if a, err := netip.ParseAddr(in.IP); err == nil && OfFamily(a, family) {
					return a, nil
				}
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return netip.Addr{}, fmt.Errorf("Service %s/%s has no %s after %v (last error: %v)", namespace, service, what, timeout, last)
			}
			return netip.Addr{}, fmt.Errorf("Service %s/%s has no %s after %v", namespace, service, what, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
