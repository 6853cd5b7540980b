package watch

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informer caches hold every Service and EndpointSlice in the cluster, so they
// keep only the fields the speaker reads; at 10,000 Services this is most of the
// speaker's memory.

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID,
		ResourceVersion: m.ResourceVersion, Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp}
}

// slimService keeps what ServiceFrom, the class check and Events need.
func slimService(s *corev1.Service) *corev1.Service {
	out := &corev1.Service{TypeMeta: s.TypeMeta, ObjectMeta: slimMeta(s.ObjectMeta)}
	out.Spec.Type = s.Spec.Type
	out.Spec.ExternalTrafficPolicy = s.Spec.ExternalTrafficPolicy
	out.Spec.LoadBalancerClass = s.Spec.LoadBalancerClass
	if len(s.Status.LoadBalancer.Ingress) > 0 {
		out.Status.LoadBalancer.Ingress = make([]corev1.LoadBalancerIngress, len(s.Status.LoadBalancer.Ingress))
		for i, in := range s.Status.LoadBalancer.Ingress {
			out.Status.LoadBalancer.Ingress[i] = corev1.LoadBalancerIngress{IP: in.IP}
		}
	}
	return out
}

// slimSlice keeps each endpoint's node and conditions.
func slimSlice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{TypeMeta: s.TypeMeta, ObjectMeta: slimMeta(s.ObjectMeta), AddressType: s.AddressType}
	out.Endpoints = make([]discoveryv1.Endpoint, len(s.Endpoints))
	for i, ep := range s.Endpoints {
		out.Endpoints[i] = discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: ep.Conditions}
	}
	return out
}

// transform is the informers' transform: slim Services and EndpointSlices, drop
// managed fields from everything else.
func transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return slimService(o), nil
	case *discoveryv1.EndpointSlice:
		return slimSlice(o), nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}
