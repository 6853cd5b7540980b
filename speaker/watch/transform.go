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

// canServeTrue is the conditions of every endpoint a slim slice keeps.
var canServeTrue = true

// slimSlice keeps what EndpointHealth asks of a slice, which nodes have an
// endpoint that can take traffic: one endpoint per such node (and one without a
// node, if any), with Ready set, and of the labels only the Service's name.
// A Service with 100 endpoints on 10 nodes keeps 10.
func slimSlice(s *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	meta := slimMeta(s.ObjectMeta)
	meta.Labels = nil
	if name, ok := s.Labels[discoveryv1.LabelServiceName]; ok {
		meta.Labels = map[string]string{discoveryv1.LabelServiceName: name}
	}
	out := &discoveryv1.EndpointSlice{TypeMeta: s.TypeMeta, ObjectMeta: meta, AddressType: s.AddressType}
	var seen map[string]bool // nodes kept, once there are many
	noNode := false
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		if !canServe(ep.Conditions) {
			continue
		}
		if ep.NodeName == nil {
			if noNode {
				continue
			}
			noNode = true
		} else if seen != nil {
			if seen[*ep.NodeName] {
				continue
			}
			seen[*ep.NodeName] = true
		} else {
			dup := false
			for _, k := range out.Endpoints {
				if k.NodeName != nil && *k.NodeName == *ep.NodeName {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			if len(out.Endpoints) == 16 {
				seen = map[string]bool{}
				for _, k := range out.Endpoints {
					if k.NodeName != nil {
						seen[*k.NodeName] = true
					}
				}
				seen[*ep.NodeName] = true
			}
		}
		out.Endpoints = append(out.Endpoints, discoveryv1.Endpoint{NodeName: ep.NodeName,
			Conditions: discoveryv1.EndpointConditions{Ready: &canServeTrue}})
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
