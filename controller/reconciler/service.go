package reconciler

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
	"github.com/ecmplb/ecmplb/internal/validation"
)

// Legacy annotation names MetalLB still honours.
const (
	legacyAddressPool       = "metallb.universe.tf/address-pool"
	legacyLoadBalancerIPs   = "metallb.universe.tf/loadBalancerIPs"
	legacyAllowSharedIP     = "metallb.universe.tf/allow-shared-ip"
	annotationLastApplied   = "kubectl.kubernetes.io/last-applied-configuration"
	fieldAnnotationIPs      = "metadata.annotations[" + v1beta1.AnnotationLoadBalancerIPs + "]"
	fieldSpecLoadBalancerIP = "spec.loadBalancerIP"
)

// Handles reports whether the controller is responsible for svc: a
// LoadBalancer Service without a loadBalancerClass when class is "", or
// with exactly that class otherwise (validation.HandlesService, the rule the
// speaker applies too).
func Handles(svc *corev1.Service, class string) bool {
	return validation.HandlesService(svc, class)
}

// ServiceKey is "namespace/name".
func ServiceKey(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

func annotation(svc *corev1.Service, name, legacy string) string {
	return either(mapAnnotations(svc.Annotations), name, legacy)
}

// annotations looks up one annotation: a Service's map or an Svc's list.
type annotations interface {
	Annotation(name string) (string, bool)
}

// mapAnnotations is a Service's annotation map.
type mapAnnotations map[string]string

func (m mapAnnotations) Annotation(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// either is annotation name, or legacy when name is not set, trimmed.
func either(a annotations, name, legacy string) string {
	if v, ok := a.Annotation(name); ok {
		return strings.TrimSpace(v)
	}
	v, _ := a.Annotation(legacy)
	return strings.TrimSpace(v)
}

// SharingKey is the Service's metallb.io/allow-shared-ip (or its legacy
// spelling), "" when it may not share an IP: only then do its ports and pod
// selector matter to the allocator.
func SharingKey(svc *corev1.Service) string {
	return annotation(svc, v1beta1.AnnotationAllowSharedIP, legacyAllowSharedIP)
}

// requestFields is what RequestFor reads of a Service. A Service gives
// them, and so does the cache's Svc without being made into a Service
// first (restore reads every cached Svc at a restart).
type requestFields struct {
	namespace, name string
	labels          map[string]string
	annotations     annotations
	policy          corev1.ServiceExternalTrafficPolicy
	selector        map[string]string
	families        []corev1.IPFamily
	familyPolicy    *corev1.IPFamilyPolicy
	ports           []corev1.ServicePort
	loadBalancerIP  string
}

// RequestFor turns a Service into an allocation request. A malformed
// requested IP yields an error naming the field.
func RequestFor(svc *corev1.Service, nsLabels map[string]string) (allocator.Request, error) {
	return requestFor(requestFields{namespace: svc.Namespace, name: svc.Name, labels: svc.Labels,
		annotations: mapAnnotations(svc.Annotations), policy: svc.Spec.ExternalTrafficPolicy,
		selector: svc.Spec.Selector, families: svc.Spec.IPFamilies, familyPolicy: svc.Spec.IPFamilyPolicy,
		ports: svc.Spec.Ports, loadBalancerIP: svc.Spec.LoadBalancerIP}, nsLabels)
}

func requestFor(svc requestFields, nsLabels map[string]string) (allocator.Request, error) {
	r := allocator.Request{
		Key:             svc.namespace + "/" + svc.name,
		Namespace:       svc.namespace,
		Labels:          svc.labels,
		NamespaceLabels: nsLabels,
		Pool:            either(svc.annotations, v1beta1.AnnotationAddressPool, legacyAddressPool),
		SharingKey:      either(svc.annotations, v1beta1.AnnotationAllowSharedIP, legacyAllowSharedIP),
		Local:           svc.policy == corev1.ServiceExternalTrafficPolicyLocal,
		Selector:        svc.selector,
	}
	for _, f := range svc.families {
		if f == corev1.IPv6Protocol {
			r.Families = append(r.Families, allocator.IPv6)
		} else {
			r.Families = append(r.Families, allocator.IPv4)
		}
	}
	if p := svc.familyPolicy; p != nil {
		switch *p {
		case corev1.IPFamilyPolicyPreferDualStack:
			r.Policy = allocator.PreferDualStack
		case corev1.IPFamilyPolicyRequireDualStack:
			r.Policy = allocator.RequireDualStack
		}
	}
	for _, p := range svc.ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		r.Ports = append(r.Ports, allocator.Port{Protocol: proto, Port: p.Port})
	}
	field, raw := fieldAnnotationIPs, either(svc.annotations, v1beta1.AnnotationLoadBalancerIPs, legacyLoadBalancerIPs)
	if _, ok := svc.annotations.Annotation(v1beta1.AnnotationLoadBalancerIPs); !ok {
		if _, ok := svc.annotations.Annotation(legacyLoadBalancerIPs); ok {
			field = "metadata.annotations[" + legacyLoadBalancerIPs + "]"
		}
	}
	if raw != "" && strings.TrimSpace(svc.loadBalancerIP) != "" {
		// As MetalLB: a Service asks for its IPs one way only, so an edit of
		// one field cannot be silently overridden by a forgotten other.
		return r, fmt.Errorf("%s and %s are both set; set only one", field, fieldSpecLoadBalancerIP)
	}
	if raw == "" && svc.loadBalancerIP != "" {
		field, raw = fieldSpecLoadBalancerIP, strings.TrimSpace(svc.loadBalancerIP)
	}
	if raw != "" {
		for _, s := range strings.Split(raw, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || ip.Zone() != "" {
				return r, fmt.Errorf("%s: %q is not a valid IP address", field, strings.TrimSpace(s))
			}
			ip = ip.Unmap()
			if slices.ContainsFunc(r.IPs, func(x netip.Addr) bool { return allocator.FamilyOf(x) == allocator.FamilyOf(ip) }) {
				return r, fmt.Errorf("%s: %q lists more than one %s address", field, raw, allocator.FamilyOf(ip))
			}
			r.IPs = append(r.IPs, ip)
		}
	}
	return r, nil
}

// StatusIPs returns the IPs in svc's status.loadBalancer.ingress. Entries
// that are not IPs (hostnames) are skipped.
func StatusIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		out = appendIP(out, in.IP)
	}
	return out
}

// appendIP appends s to ips when it is an IP (unmapped).
func appendIP(ips []netip.Addr, s string) []netip.Addr {
	if ip, err := netip.ParseAddr(s); err == nil {
		ips = append(ips, ip.Unmap())
	}
	return ips
}
