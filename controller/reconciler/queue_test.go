package reconciler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

func TestServicePriority(t *testing.T) {
	lb := func(mut ...func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", Generation: 1},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
		for _, m := range mut {
			m(s)
		}
		return s
	}
	withIP := func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}
	}
	annotated := func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[v1beta1.AnnotationIPAllocatedFrom] = "p"
	}
	clusterIP := func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }
	bumped := func(s *corev1.Service) { s.Generation = 2 }
	relabelled := func(s *corev1.Service) { s.Labels = map[string]string{"a": "b"} }
	tests := []struct {
		name     string
		old, cur *corev1.Service
		initial  bool
		annotate bool
		want     int
	}{
		{name: "new Service", cur: lb(), want: PriorityWork},
		{name: "listed at start without an IP", cur: lb(), initial: true, want: PriorityWork},
		{name: "listed at start with IP", cur: lb(withIP), initial: true, want: PrioritySettled},
		{name: "listed with IP, annotation missing", cur: lb(withIP), initial: true, annotate: true, want: PriorityWork},
		{name: "listed with IP and annotation", cur: lb(withIP, annotated), initial: true, annotate: true, want: PrioritySettled},
		{name: "created (not listed) with IP", cur: lb(withIP), want: PriorityWork},
		{name: "listed ClusterIP without status", cur: lb(clusterIP), initial: true, want: PrioritySettled},
		{name: "listed ClusterIP still holding an IP", cur: lb(clusterIP, withIP), initial: true, want: PriorityWork},
		{name: "our status write echoed", old: lb(), cur: lb(withIP), want: PrioritySettled},
		{name: "spec changed on a settled Service", old: lb(withIP), cur: lb(withIP, bumped), want: PriorityWork},
		{name: "labels changed on a settled Service", old: lb(withIP), cur: lb(withIP, relabelled), want: PriorityWork},
		{name: "annotation changed", old: lb(withIP), cur: lb(withIP, annotated), want: PriorityWork},
		{name: "turned ClusterIP, IP to clear", old: lb(withIP), cur: lb(withIP, clusterIP, bumped), want: PriorityWork},
		{name: "status emptied by someone", old: lb(withIP), cur: lb(), want: PriorityWork},
		{name: "deleted", old: lb(withIP), want: PriorityWork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compact := func(s *corev1.Service) *Svc {
				if s == nil {
					return nil
				}
				return Compact(s)
			}
			if got := ServicePriority(compact(tt.old), compact(tt.cur), tt.initial, "", tt.annotate); got != tt.want {
				t.Errorf("priority %d, want %d", got, tt.want)
			}
		})
	}
}
