package app

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/controller/reconciler"
)

// trimmed is what the reconciler reads of a cached Service: the Service
// made from the Svc the cache's transform keeps.
func trimmed(t *testing.T, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := transform(svc.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := out.(*reconciler.Svc)
	if !ok {
		t.Fatalf("the transform made a %T of a Service, want *reconciler.Svc", out)
	}
	return s.Service()
}

func TestTrimKeepsWhatAllocationReads(t *testing.T) {
	local := corev1.ServiceExternalTrafficPolicyLocal
	class := "x"
	pol := corev1.IPFamilyPolicyPreferDualStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Labels: map[string]string{"tier": "web"},
			Annotations: map[string]string{
				"metallb.io/loadBalancerIPs": "203.0.113.5", "metallb.universe.tf/address-pool": "p",
				"metallb.io/allow-shared-ip":                       "k",
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
	s := trimmed(t, svc)
	after, err := reconciler.RequestFor(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before.Key != after.Key || before.Pool != after.Pool || len(after.IPs) != 1 || after.IPs[0] != before.IPs[0] ||
		!after.Local || after.Policy != before.Policy || after.Ports[0] != before.Ports[0] || after.Selector["app"] != "web" ||
		after.Labels["tier"] != "web" || after.SharingKey != "k" {
		t.Fatalf("request changed by trim: %+v -> %+v", before, after)
	}
	// spec.loadBalancerIP survives too: with the annotation it is a conflict
	// (as MetalLB), alone it is the request.
	withSpec := svc.DeepCopy()
	withSpec.Spec.LoadBalancerIP = "203.0.113.6"
	if _, err := reconciler.RequestFor(trimmed(t, withSpec), nil); err == nil {
		t.Fatal("trim lost spec.loadBalancerIP: the conflict with the annotation went unnoticed")
	}
	delete(withSpec.Annotations, "metallb.io/loadBalancerIPs")
	if r, err := reconciler.RequestFor(trimmed(t, withSpec), nil); err != nil || len(r.IPs) != 1 || r.IPs[0].String() != "203.0.113.6" {
		t.Fatalf("spec.loadBalancerIP after trim: %+v, %v", r.IPs, err)
	}
	if len(reconciler.StatusIPs(s)) != 1 || !reconciler.Handles(s, "x") {
		t.Fatal("status or class lost")
	}
	if s.ManagedFields != nil || len(s.Annotations) != 3 || s.Spec.ClusterIP != "" || s.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("not trimmed: %+v", s)
	}
	// Without a sharing key, ports and selector play no part: dropped.
	alone := svc.DeepCopy()
	delete(alone.Annotations, "metallb.io/allow-shared-ip")
	if a := trimmed(t, alone); a.Spec.Ports != nil || a.Spec.Selector != nil || a.Spec.ExternalTrafficPolicy != local {
		t.Fatalf("a Service that cannot share keeps ports or selector, or lost its traffic policy: %+v", a.Spec)
	}
}

// TestTrimAllocatesAsUntrimmed plays the same Services, whole and trimmed,
// through two allocators: every answer (IPs or refusal) must be the same, so
// nothing the allocation rules read is trimmed away. The Services exercise
// sharing (ports, selectors, traffic policy, keys in both spellings),
// requested IPs, pools, families and labels.
func TestTrimAllocatesAsUntrimmed(t *testing.T) {
	type svcSpec struct {
		name, key, legacyKey, pool, ips string
		ports                           []int32
		sel                             string
		local                           bool
		labels                          map[string]string
		dual                            bool
	}
	mk := func(s svcSpec) *corev1.Service {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: s.name, Labels: s.labels, Annotations: map[string]string{"other": "x"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.9",
				Selector: map[string]string{"app": s.sel}},
		}
		for _, p := range s.ports {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprint(p), Port: p, Protocol: corev1.ProtocolTCP, NodePort: 30000 + p})
		}
		if s.key != "" {
			svc.Annotations["metallb.io/allow-shared-ip"] = s.key
		}
		if s.legacyKey != "" {
			svc.Annotations["metallb.universe.tf/allow-shared-ip"] = s.legacyKey
		}
		if s.pool != "" {
			svc.Annotations["metallb.io/address-pool"] = s.pool
		}
		if s.ips != "" {
			svc.Annotations["metallb.io/loadBalancerIPs"] = s.ips
		}
		if s.local {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		if s.dual {
			p := corev1.IPFamilyPolicyRequireDualStack
			svc.Spec.IPFamilyPolicy = &p
			svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		}
		return svc
	}
	services := []svcSpec{
		{name: "a", key: "k", ports: []int32{80}, sel: "x", ips: "10.0.0.1"},
		{name: "b-same-port", key: "k", ports: []int32{80}, sel: "x", ips: "10.0.0.1"},                      // port used twice: refused
		{name: "c-other-port", key: "k", ports: []int32{443}, sel: "y", ips: "10.0.0.1"},                    // Cluster policy: shares
		{name: "d-local-other-sel", key: "k", ports: []int32{8080}, sel: "z", local: true, ips: "10.0.0.1"}, // Local, other selector: refused
		{name: "e-local-same-sel", legacyKey: "m", ports: []int32{80}, sel: "s", local: true, ips: "10.0.0.2"},
		{name: "f-local-same-sel", legacyKey: "m", ports: []int32{81}, sel: "s", local: true, ips: "10.0.0.2"}, // shares
		{name: "g-no-key", ports: []int32{82}, sel: "s", ips: "10.0.0.2"},                                      // in use
		{name: "h-auto", ports: []int32{80}, sel: "h"},
		{name: "i-pool-b", pool: "b", ports: []int32{80}, sel: "i"},
		{name: "j-labelled", labels: map[string]string{"team": "blue"}, sel: "j"},
		{name: "k-dual", dual: true, sel: "k"},
		{name: "l-key-joins", key: "k", ports: []int32{9090}, sel: "q"}, // joins a's shared IP
	}
	pools := []allocator.PoolConfig{
		{Name: "a", Addresses: []string{"10.0.0.0/24", "fd00::/120"}, AutoAssign: true},
		{Name: "b", Addresses: []string{"10.1.0.0/24"}, AutoAssign: false},
		{Name: "blue", Addresses: []string{"10.2.0.0/24"}, AutoAssign: true},
	}
	run := func(trimIt bool) []string {
		a := allocator.New()
		if _, err := a.SetPools(pools); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range services {
			svc := mk(s)
			if trimIt {
				svc = trimmed(t, svc)
			}
			r, err := reconciler.RequestFor(svc, nil)
			if err != nil {
				out = append(out, s.name+": "+err.Error())
				continue
			}
			as, _, err := a.Assign(r)
			if err != nil {
				out = append(out, s.name+": "+err.Error())
				continue
			}
			out = append(out, fmt.Sprintf("%s: %v from %s", s.name, as.IPs, as.Pool))
		}
		return out
	}
	whole, trim := run(false), run(true)
	refused := 0
	for i := range whole {
		if whole[i] != trim[i] {
			t.Errorf("trimmed Service allocated differently:\nwhole:   %s\ntrimmed: %s", whole[i], trim[i])
		}
		if !strings.Contains(whole[i], " from ") {
			refused++
		}
	}
	if refused < 3 {
		t.Fatalf("the table should exercise refusals (port, selector, in use): %v", whole)
	}
}

// TestTrimKeepsLastChange: a rebuild from the cache resolves sharing
// conflicts by the time of each Service's last change, read from
// managedFields; trimming keeps that time.
func TestTrimKeepsLastChange(t *testing.T) {
	at := func(s int64) *metav1.Time { return &metav1.Time{Time: time.Unix(s, 0)} }
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", CreationTimestamp: metav1.Unix(10, 0),
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", Time: at(20)},
			{Manager: reconciler.FieldManager, Time: at(50)},
			{Manager: "x", Subresource: "status", Time: at(60)},
		}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	if got, want := reconciler.LastChange(trimmed(t, svc)), reconciler.LastChange(svc); !got.Equal(want) || !want.Equal(time.Unix(20, 0)) {
		t.Fatalf("LastChange after trim %v, before %v (want 20s)", got, want)
	}
	svc.ManagedFields = svc.ManagedFields[1:]
	if got := trimmed(t, svc); got.ManagedFields != nil || !reconciler.LastChange(got).Equal(time.Unix(10, 0)) {
		t.Fatalf("only the controller's and status writes: want no entry and the creation time, got %+v", got.ManagedFields)
	}
}

// TestTrimNonLoadBalancer: a Service the controller does not handle keeps
// what says so, and a status it may have to clear.
func TestTrimNonLoadBalancer(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", Labels: map[string]string{"a": "b"},
		Annotations: map[string]string{"metallb.io/address-pool": "p"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", Selector: map[string]string{"a": "b"},
			Ports: []corev1.ServicePort{{Port: 80}}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}}}}
	got := trimmed(t, svc)
	if reconciler.Handles(got, "") || got.Spec.Type != corev1.ServiceTypeClusterIP || len(reconciler.StatusIPs(got)) != 1 {
		t.Fatalf("type or status lost: %+v", got)
	}
	if got.Spec.Ports != nil || got.Spec.Selector != nil || got.Labels != nil || got.Spec.ClusterIP != "" {
		t.Fatalf("not trimmed: %+v", got)
	}
}

// TestServiceInformerHasNoNamespaceIndex: the Service informer keeps no
// index beside its store (nothing lists cached Services by namespace);
// other informers keep controller-runtime's.
func TestServiceInformerHasNoNamespaceIndex(t *testing.T) {
	lw := &toolscache.ListWatch{}
	idx := toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc}
	if got := newInformer(lw)(lw, &corev1.Service{}, 0, idx).GetIndexer().GetIndexers(); len(got) != 0 {
		t.Fatalf("Service informer indexes %v", got)
	}
	if got := newInformer(lw)(lw, &corev1.Namespace{}, 0, idx).GetIndexer().GetIndexers(); len(got) != 1 {
		t.Fatalf("Namespace informer indexes %v, want the namespace index", got)
	}
}
