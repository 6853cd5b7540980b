package reconciler

import (
	"net/netip"
	"slices"
	"strings"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/internal/slimmeta"
)

// Svc is what the Service cache keeps of a Service (Compact makes it): what
// allocation, sharing checks, status writes, queue priorities and Events
// read. A trimmed corev1.Service kept about 1.5 KB per Service in the
// cache (the whole decoded struct and an annotation map); an Svc is 280
// bytes and a few shared or small strings. Service() turns it back into the part of a
// corev1.Service those readers use.
type Svc struct {
	// SvcMeta keeps name, namespace, UID, resourceVersion, generation,
	// creation time and labels (pool serviceSelectors read them).
	SvcMeta
	// Annotations are the metallb.io and metallb.universe.tf ones only.
	Annotations []Annotation
	// Changed is LastChange in Unix nanoseconds when it is not the creation
	// time (else 0).
	Changed        int64
	Type           corev1.ServiceType
	Class          *string // spec.loadBalancerClass
	Policy         corev1.ServiceExternalTrafficPolicy
	IPFamilies     []corev1.IPFamily
	IPFamilyPolicy *corev1.IPFamilyPolicy
	LoadBalancerIP string
	// Ports (port and protocol) and Selector matter only for IP sharing:
	// kept only on a Service with a sharing key.
	Ports    []corev1.ServicePort
	Selector map[string]string
	// Ingress is status.loadBalancer.ingress[].ip ("" for a hostname entry).
	Ingress []string
}

// Annotation is one annotation kept on an Svc.
type Annotation struct{ Name, Value string }

// GetObjectKind implements runtime.Object; an Svc has no kind of its own.
func (s *Svc) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (s *Svc) DeepCopyObject() runtime.Object {
	c := *s
	if s.Labels != nil {
		c.Labels = make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			c.Labels[k] = v
		}
	}
	if s.Class != nil {
		class := *s.Class
		c.Class = &class
	}
	if s.IPFamilyPolicy != nil {
		p := *s.IPFamilyPolicy
		c.IPFamilyPolicy = &p
	}
	c.Annotations = slices.Clone(s.Annotations)
	c.IPFamilies = slices.Clone(s.IPFamilies)
	c.Ports = slices.Clone(s.Ports)
	c.Ingress = slices.Clone(s.Ingress)
	if s.Selector != nil {
		c.Selector = make(map[string]string, len(s.Selector))
		for k, v := range s.Selector {
			c.Selector[k] = v
		}
	}
	return &c
}

// Annotation returns the value of a kept annotation.
func (s *Svc) Annotation(name string) (string, bool) {
	for _, a := range s.Annotations {
		if a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

// keptAnnotation reports annotations the controller reads: metallb.io ones
// in either spelling (kubectl's last-applied copy, often the largest, is not).
func keptAnnotation(name string) bool {
	return strings.HasPrefix(name, "metallb.io/") || strings.HasPrefix(name, "metallb.universe.tf/")
}

// Compact makes the Svc of a Service (the cache's transform). Of a Service
// that is not a LoadBalancer it keeps only what tells that, and the status
// it may still carry (to be cleared). It never changes svc.
func Compact(svc *corev1.Service) *Svc {
	out := &Svc{
		SvcMeta: SvcMeta{Meta: slimmeta.Meta{Name: svc.Name, Namespace: intern(svc.Namespace), UID: svc.UID,
			ResourceVersion: svc.ResourceVersion}, Generation: svc.Generation, CreationTimestamp: svc.CreationTimestamp},
		Type:  corev1.ServiceType(intern(string(svc.Spec.Type))),
		Class: svc.Spec.LoadBalancerClass,
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out.Ingress = append(out.Ingress, in.IP)
	}
	if t := LastChange(svc); !t.Equal(svc.CreationTimestamp.Time) {
		out.Changed = t.UnixNano()
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return out
	}
	out.Labels = svc.Labels
	for k, v := range svc.Annotations {
		if keptAnnotation(k) {
			out.Annotations = append(out.Annotations, Annotation{Name: intern(k), Value: intern(v)})
		}
	}
	// Map order is random; a fixed order keeps DeepEqual and tests stable.
	slices.SortFunc(out.Annotations, func(a, b Annotation) int { return strings.Compare(a.Name, b.Name) })
	sp := &svc.Spec
	out.Policy = corev1.ServiceExternalTrafficPolicy(intern(string(sp.ExternalTrafficPolicy)))
	out.LoadBalancerIP = sp.LoadBalancerIP
	out.IPFamilies = families(sp.IPFamilies)
	out.IPFamilyPolicy = familyPolicy(sp.IPFamilyPolicy)
	if out.sharingKey() != "" {
		out.Selector = sp.Selector
		out.Ports = make([]corev1.ServicePort, len(sp.Ports))
		for i, p := range sp.Ports {
			out.Ports[i] = corev1.ServicePort{Port: p.Port, Protocol: corev1.Protocol(intern(string(p.Protocol)))}
		}
	}
	return out
}

// Service makes a new corev1.Service with what the Svc kept: what
// RequestFor, Handles, StatusIPs, LastChange, Written and Events read give
// the same answers on it as on the Service the Svc was made from.
func (s *Svc) Service() *corev1.Service {
	out := &corev1.Service{ObjectMeta: s.objectMeta()}
	if len(s.Annotations) > 0 {
		out.Annotations = make(map[string]string, len(s.Annotations))
		for _, a := range s.Annotations {
			out.Annotations[a.Name] = a.Value
		}
	}
	if s.Changed != 0 {
		out.ManagedFields = []metav1.ManagedFieldsEntry{{Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: time.Unix(0, s.Changed)}}}
	}
	out.Spec = corev1.ServiceSpec{Type: s.Type, LoadBalancerClass: s.Class, ExternalTrafficPolicy: s.Policy,
		IPFamilies: s.IPFamilies, IPFamilyPolicy: s.IPFamilyPolicy, LoadBalancerIP: s.LoadBalancerIP,
		Ports: s.Ports, Selector: s.Selector}
	for _, ip := range s.Ingress {
		out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return out
}

// lastChange is LastChange on the Svc.
func (s *Svc) lastChange() time.Time {
	if s.Changed != 0 {
		return time.Unix(0, s.Changed)
	}
	return s.CreationTimestamp.Time
}

// handles is Handles on the Svc.
func (s *Svc) handles(class string) bool {
	if s.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if s.Class == nil {
		return class == ""
	}
	return *s.Class == class
}

// sharingKey is SharingKey on the Svc.
func (s *Svc) sharingKey() string {
	return either(s, v1beta1.AnnotationAllowSharedIP, legacyAllowSharedIP)
}

// request is RequestFor on the Svc, without making a Service of it.
func (s *Svc) request(nsLabels map[string]string) (allocator.Request, error) {
	return requestFor(requestFields{namespace: s.Namespace, name: s.Name, labels: s.Labels, annotations: s,
		policy: s.Policy, selector: s.Selector, families: s.IPFamilies, familyPolicy: s.IPFamilyPolicy,
		ports: s.Ports, loadBalancerIP: s.LoadBalancerIP}, nsLabels)
}

// statusIPs is StatusIPs on the Svc.
func (s *Svc) statusIPs() []netip.Addr {
	var out []netip.Addr
	for _, ip := range s.Ingress {
		out = appendIP(out, ip)
	}
	return out
}

// Shared, read-only values that most Services hold: no allocation each.
var (
	sharedFamilies = [][]corev1.IPFamily{{corev1.IPv4Protocol}, {corev1.IPv6Protocol},
		{corev1.IPv4Protocol, corev1.IPv6Protocol}, {corev1.IPv6Protocol, corev1.IPv4Protocol}}
	sharedPolicies = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack,
		corev1.IPFamilyPolicyRequireDualStack}
)

// families returns fs, as one of the shared slices when it is one of them.
func families(fs []corev1.IPFamily) []corev1.IPFamily {
	if len(fs) == 0 {
		return nil
	}
	for _, s := range sharedFamilies {
		if slices.Equal(s, fs) {
			return s
		}
	}
	out := make([]corev1.IPFamily, len(fs))
	for i, f := range fs {
		out[i] = corev1.IPFamily(intern(string(f)))
	}
	return out
}

// familyPolicy returns p, pointing to a shared value when it is a known one.
func familyPolicy(p *corev1.IPFamilyPolicy) *corev1.IPFamilyPolicy {
	if p == nil {
		return nil
	}
	for i := range sharedPolicies {
		if sharedPolicies[i] == *p {
			return &sharedPolicies[i]
		}
	}
	v := corev1.IPFamilyPolicy(intern(string(*p)))
	return &v
}

// intern returns one shared copy of a string that many cached Services
// hold (namespace, annotation names and pool names, enum values).
func intern(s string) string { return unique.Make(s).Value() }

// GetAnnotations returns the kept annotations (the metallb.io ones, or a
// watch bookmark's end-of-initial-events marker) as a map; nil if none.
func (s *Svc) GetAnnotations() map[string]string {
	if len(s.Annotations) == 0 {
		return nil
	}
	out := make(map[string]string, len(s.Annotations))
	for _, a := range s.Annotations {
		out[a.Name] = a.Value
	}
	return out
}
