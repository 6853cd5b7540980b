package reconciler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/internal/slimmeta"
)

// randomService makes a Service from a small alphabet of values, so that
// sharing keys, ports, selectors, requested IPs and pools collide often.
func randomService(r *rand.Rand, i int) *corev1.Service {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: pick("a", "b"), Name: fmt.Sprintf("s%d", i), UID: types.UID(fmt.Sprintf("uid-%d", i)),
			ResourceVersion: fmt.Sprint(100 + i), Generation: int64(1 + r.IntN(3)), CreationTimestamp: metav1.Unix(int64(r.IntN(50)), 0),
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "other": pick("x", "y")}},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", SessionAffinity: corev1.ServiceAffinityNone},
	}
	if r.IntN(3) == 0 {
		svc.Labels = map[string]string{"team": pick("blue", "red")}
	}
	switch r.IntN(6) {
	case 0:
		svc.Spec.Type = corev1.ServiceTypeClusterIP
	case 1:
		svc.Spec.Type = corev1.ServiceTypeNodePort
	default:
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
	}
	if r.IntN(5) == 0 {
		c := pick("x", "")
		svc.Spec.LoadBalancerClass = &c
	}
	if r.IntN(2) == 0 {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	} else if r.IntN(2) == 0 {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	ann := func(name, legacy, value string) {
		switch r.IntN(4) {
		case 0:
			svc.Annotations[name] = value
		case 1:
			svc.Annotations[legacy] = value
		case 2:
			svc.Annotations[name], svc.Annotations[legacy] = value, value+"-legacy"
		}
	}
	ann(v1beta1.AnnotationAllowSharedIP, legacyAllowSharedIP, pick("k", " k ", "m", ""))
	ann(v1beta1.AnnotationAddressPool, legacyAddressPool, pick("p", "q", "none"))
	if r.IntN(3) == 0 {
		ann(v1beta1.AnnotationLoadBalancerIPs, legacyLoadBalancerIPs, pick("10.0.0.1", "10.0.0.2", "10.0.0.1, fd00::1", "bad", "10.0.0.1,10.0.0.2"))
	}
	if r.IntN(5) == 0 {
		svc.Spec.LoadBalancerIP = pick("10.0.0.3", " 10.0.0.1 ", "x")
	}
	if r.IntN(3) == 0 {
		svc.Annotations[v1beta1.AnnotationIPAllocatedFrom] = pick("p", "q")
	}
	switch r.IntN(4) {
	case 0:
		p := corev1.IPFamilyPolicyRequireDualStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &p, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	case 1:
		p := corev1.IPFamilyPolicyPreferDualStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &p, []corev1.IPFamily{corev1.IPv6Protocol}
	case 2:
		p := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &p, []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if r.IntN(4) > 0 {
		svc.Spec.Selector = map[string]string{"app": pick("x", "y")}
	}
	for range r.IntN(3) {
		p := corev1.ServicePort{Name: fmt.Sprint(r.IntN(100)), Port: int32(80 + r.IntN(3)), TargetPort: intstr.FromInt(8080), NodePort: int32(30000 + r.IntN(100))}
		if r.IntN(3) > 0 {
			p.Protocol = corev1.Protocol(pick("TCP", "UDP"))
		}
		svc.Spec.Ports = append(svc.Spec.Ports, p)
	}
	for range r.IntN(3) {
		in := corev1.LoadBalancerIngress{IP: pick("10.0.0.1", "10.0.0.7", "fd00::7", "")}
		if in.IP == "" {
			in.Hostname = "lb.example"
		}
		svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, in)
	}
	for range r.IntN(4) {
		mf := metav1.ManagedFieldsEntry{Manager: pick("kubectl", FieldManager, "helm"), Operation: metav1.ManagedFieldsOperationUpdate}
		if r.IntN(3) == 0 {
			mf.Subresource = "status"
		}
		if r.IntN(4) > 0 {
			mf.Time = &metav1.Time{Time: time.Unix(int64(r.IntN(100)), 0)}
		}
		svc.ManagedFields = append(svc.ManagedFields, mf)
	}
	return svc
}

// TestCompactDecidesAsWhole is the property the Service cache rests on:
// for random Services, everything the controller decides from a Service
// (whether it handles it, the allocation request or its error, the status
// IPs, the last change, the shape Written reads, the queue priority, and
// the allocator's answers for a sequence of Services) is the same on the
// whole Service as on the one made from its Svc, and as the Svc's own
// answers where it gives them without making a Service.
func TestCompactDecidesAsWhole(t *testing.T) {
	pools := []allocator.PoolConfig{
		{Name: "p", Addresses: []string{"10.0.0.0/29", "fd00::/125"}, AutoAssign: true},
		{Name: "q", Addresses: []string{"10.1.0.0/30"}, AutoAssign: false},
	}
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		whole, compact := allocator.New(), allocator.New()
		for _, a := range []*allocator.Allocator{whole, compact} {
			if _, err := a.SetPools(pools); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 12 {
			full := randomService(r, i)
			orig := full.DeepCopy()
			s := Compact(full)
			if !reflect.DeepEqual(full, orig) {
				t.Fatalf("seed %d: Compact changed the Service", seed)
			}
			got := s.Service()
			name := fmt.Sprintf("seed %d, %s", seed, ServiceKey(full))
			for _, class := range []string{"", "x"} {
				if Handles(full, class) != Handles(got, class) || Handles(full, class) != s.handles(class) {
					t.Fatalf("%s: Handles(%q) differs", name, class)
				}
			}
			if ServiceKey(got) != ServiceKey(full) || got.UID != full.UID || got.ResourceVersion != full.ResourceVersion {
				t.Fatalf("%s: identity lost: %+v", name, got.ObjectMeta)
			}
			if !slices.Equal(StatusIPs(full), StatusIPs(got)) || !slices.Equal(StatusIPs(full), s.statusIPs()) ||
				len(got.Status.LoadBalancer.Ingress) != len(full.Status.LoadBalancer.Ingress) {
				t.Fatalf("%s: status %v, want %v", name, got.Status, full.Status)
			}
			if !LastChange(full).Equal(LastChange(got)) || !LastChange(full).Equal(s.lastChange()) {
				t.Fatalf("%s: LastChange %v, want %v", name, LastChange(got), LastChange(full))
			}
			settled := func(svc *corev1.Service, annotate bool) bool { // Settled as it read whole Services
				if !Handles(svc, "") {
					return len(svc.Status.LoadBalancer.Ingress) == 0
				}
				return len(StatusIPs(svc)) > 0 && (!annotate || svc.Annotations[v1beta1.AnnotationIPAllocatedFrom] != "")
			}
			for _, annotate := range []bool{false, true} {
				if Settled(s, "", annotate) != settled(full, annotate) {
					t.Fatalf("%s: Settled(annotate %v) %v on the Svc", name, annotate, Settled(s, "", annotate))
				}
			}
			if !Handles(full, "") {
				continue
			}
			// Written is read only for Services the controller handles (syncService).
			w := Written{}.Wrote(full.ResourceVersion, "999", Shape{Pool: "z"})
			for _, rec := range []Written{{}, w} {
				a, fa := rec.View(full)
				b, fb := rec.View(got)
				if !reflect.DeepEqual(a, b) || fa != fb {
					t.Fatalf("%s: Written.View %+v %v, want %+v %v", name, b, fb, a, fa)
				}
			}
			nsLabels := map[string]string{"env": "prod"}
			rw, errW := RequestFor(full, nsLabels)
			rc, errC := RequestFor(got, nsLabels)
			if fmt.Sprint(errW) != fmt.Sprint(errC) {
				t.Fatalf("%s: RequestFor error %v, want %v", name, errC, errW)
			}
			// The Svc's own request (restore's) is the one of the Service made from it.
			if rs, errS := s.request(nsLabels); fmt.Sprint(errS) != fmt.Sprint(errC) || !reflect.DeepEqual(rs, rc) {
				t.Fatalf("%s: Svc request\n%+v %v\nwant\n%+v %v", name, rs, errS, rc, errC)
			}
			if rw.SharingKey == "" {
				// Ports and selector play no part without a sharing key.
				rw.Ports, rw.Selector = nil, nil
			}
			if !reflect.DeepEqual(rw, rc) {
				t.Fatalf("%s: request\n%+v\nwant\n%+v", name, rc, rw)
			}
			if errW != nil {
				continue
			}
			aw, _, errW := whole.Assign(rw)
			ac, _, errC := compact.Assign(rc)
			if fmt.Sprint(aw, errW) != fmt.Sprint(ac, errC) {
				t.Fatalf("%s: allocated %v %v, whole %v %v", name, ac, errC, aw, errW)
			}
		}
	}
}

// TestCompactSharesStrings: the strings thousands of cached Services repeat
// are one copy each, and the Svc holds no more of the Service than it reads.
func TestCompactSharesStrings(t *testing.T) {
	mk := func(name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: string([]byte("ns")), Name: name,
			Annotations: map[string]string{string([]byte(v1beta1.AnnotationIPAllocatedFrom)): string([]byte("pool")), "x": "y"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.1",
				Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"a": "b"}}}
	}
	a, b := Compact(mk("a")), Compact(mk("b"))
	for _, svc := range []*Svc{a, b} {
		p := corev1.IPFamilyPolicy("PreferDualStack")
		svc.IPFamilies, svc.IPFamilyPolicy = families([]corev1.IPFamily{"IPv4", "IPv6"}), familyPolicy(&p)
	}
	if &a.IPFamilies[0] != &b.IPFamilies[0] || a.IPFamilyPolicy != b.IPFamilyPolicy || *a.IPFamilyPolicy != corev1.IPFamilyPolicyPreferDualStack {
		t.Fatal("families or family policy not shared")
	}
	same := func(x, y string) bool { return len(x) > 0 && unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Namespace, b.Namespace) || !same(a.Annotations[0].Name, b.Annotations[0].Name) || !same(a.Annotations[0].Value, b.Annotations[0].Value) {
		t.Fatal("namespace or annotation strings not shared")
	}
	if len(a.Annotations) != 1 || a.Ports != nil || a.Selector != nil {
		t.Fatalf("kept more than allocation reads: %+v", a)
	}
	if pool, _ := a.Annotation(v1beta1.AnnotationIPAllocatedFrom); pool != "pool" {
		t.Fatalf("pool annotation %q", pool)
	}
}

// TestKeyCompare: restore breaks ties by the Service key as a string, where
// "a/x" comes after "a-b/y".
func TestKeyCompare(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return []string{"a", "a-b", "ab", "a0", "b", "", "a/"}[r.IntN(7)] }
	sign := func(x int) int { return min(max(x, -1), 1) }
	for range 2000 {
		a := &Svc{SvcMeta: SvcMeta{Meta: slimmeta.Meta{Namespace: pick(), Name: pick()}}}
		b := &Svc{SvcMeta: SvcMeta{Meta: slimmeta.Meta{Namespace: pick(), Name: pick()}}}
		want := strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		if got := sign(keyCompare(a, b)); got != want {
			t.Fatalf("keyCompare(%s/%s, %s/%s) = %d, want %d", a.Namespace, a.Name, b.Namespace, b.Name, got, want)
		}
	}
}

// TestSvcSize: the cache holds one Svc per Service in the cluster; it stays
// within the 288-byte allocation class.
func TestSvcSize(t *testing.T) {
	if n := unsafe.Sizeof(Svc{}); n > 288 {
		t.Fatalf("Svc is %d bytes", n)
	}
}

// TestSvcDeepCopy: a copy shares nothing a writer could change under the
// original.
func TestSvcDeepCopy(t *testing.T) {
	class, pol := "x", corev1.IPFamilyPolicyRequireDualStack
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", Labels: map[string]string{"a": "b"},
		Annotations: map[string]string{v1beta1.AnnotationAllowSharedIP: "k"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: &class, IPFamilyPolicy: &pol,
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
			Ports:      []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "x"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "10.0.0.1"}}}}}
	orig := Compact(svc)
	want := orig.Service()
	c := orig.DeepCopyObject().(*Svc)
	c.Labels["a"], *c.Class, *c.IPFamilyPolicy = "z", "y", corev1.IPFamilyPolicySingleStack
	c.Annotations[0].Value, c.IPFamilies[0], c.Ports[0].Port, c.Selector["app"], c.Ingress[0] = "m", corev1.IPv6Protocol, 81, "y", "10.0.0.2"
	if got := orig.Service(); !reflect.DeepEqual(got, want) {
		t.Fatalf("changing the copy changed the original:\n%+v\nwant\n%+v", got, want)
	}
}
