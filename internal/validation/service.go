package validation

import corev1 "k8s.io/api/core/v1"

// HandlesService reports whether ecmplb is responsible for svc: a
// LoadBalancer Service without spec.loadBalancerClass when class is "", or
// with exactly that class otherwise. The controller allocates only for these
// Services and the speaker announces only these, so beside another
// load-balancer implementation neither touches the other's Services.
func HandlesService(svc *corev1.Service, class string) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}
