package app

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ecmplb/ecmplb/controller/reconciler"
)

func TestTrimKeepsWhatAllocationReads(t *testing.T) {
	local := corev1.ServiceExternalTrafficPolicyLocal
	class := "x"
	pol := corev1.IPFamilyPolicyPreferDualStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Labels: map[string]string{"tier": "web"},
			Annotations: map[string]string{
				"metallb.io/loadBalancerIPs": "203.0.113.5", "metallb.universe.tf/address-pool": "p",
				"kubectl.kubernetes.io/last-applied-configuration": "{...}", "other": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: &class, ClusterIP: "10.96.0.1",
			ExternalTrafficPolicy: local, IPFamilyPolicy: &pol, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt(8443), NodePort: 30000}},
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}}},
	}
	before, err := reconciler.RequestFor(svc.DeepCopy(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := trim(svc)
	s := out.(*corev1.Service)
	after, err := reconciler.RequestFor(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.Key != after.Key || before.Pool != after.Pool || len(after.IPs) != 1 || after.IPs[0] != before.IPs[0] ||
		!after.Local || after.Policy != before.Policy || after.Ports[0] != before.Ports[0] || after.Selector["app"] != "web" ||
		after.Labels["tier"] != "web" {
		t.Fatalf("request changed by trim: %+v -> %+v", before, after)
	}
	// spec.loadBalancerIP survives too: with the annotation it is a conflict
	// (as MetalLB), alone it is the request.
	withSpec := svc.DeepCopy()
	withSpec.Spec.LoadBalancerIP = "203.0.113.6"
	trimmed, _ := trim(withSpec.DeepCopy())
	if _, err := reconciler.RequestFor(trimmed.(*corev1.Service), nil); err == nil {
		t.Fatal("trim lost spec.loadBalancerIP: the conflict with the annotation went unnoticed")
	}
	delete(withSpec.Annotations, "metallb.io/loadBalancerIPs")
	trimmed, _ = trim(withSpec)
	if r, err := reconciler.RequestFor(trimmed.(*corev1.Service), nil); err != nil || len(r.IPs) != 1 || r.IPs[0].String() != "203.0.113.6" {
		t.Fatalf("spec.loadBalancerIP after trim: %+v, %v", r.IPs, err)
	}
	if len(reconciler.StatusIPs(s)) != 1 || !reconciler.Handles(s, "x") {
		t.Fatal("status or class lost")
	}
	if s.ManagedFields != nil || len(s.Annotations) != 2 || s.Spec.ClusterIP != "" || s.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("not trimmed: %+v", s)
	}
}
