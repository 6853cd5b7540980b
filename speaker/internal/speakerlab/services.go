package speakerlab

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// CreateService creates a LoadBalancer Service and sets its allocated IPs in
// status, as the controller would.
func (l *Lab) CreateService(ctx context.Context, ns, name, ip string, local bool, more ...string) error {
	etp := corev1.ServiceExternalTrafficPolicyCluster
	if local {
		etp = corev1.ServiceExternalTrafficPolicyLocal
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Ports:                         []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	svc, err := l.Client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	for _, a := range more {
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: a})
	}
	_, err = l.Client.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	return err
}

// EndpointSlice returns a slice for Service name with one endpoint on node.
func EndpointSlice(ns, name, node string, ready bool) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-eps",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.10"}, NodeName: ptr.To(node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)}}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
}

// CreateEndpoints creates the Service's EndpointSlice.
func (l *Lab) CreateEndpoints(ctx context.Context, ns, name string, ready bool) error {
	_, err := l.Client.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, name, NodeName, ready), metav1.CreateOptions{})
	return err
}

// SetReady updates the Service's EndpointSlice's readiness.
func (l *Lab) SetReady(ctx context.Context, ns, name string, ready bool) error {
	_, err := l.Client.DiscoveryV1().EndpointSlices(ns).Update(ctx, EndpointSlice(ns, name, NodeName, ready), metav1.UpdateOptions{})
	return err
}
