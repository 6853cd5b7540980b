package watch

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The informer caches hold every Service and EndpointSlice in the cluster, so they
// keep only the fields the speaker reads; at 10,000 Services this is most of the
// speaker's memory.

// Svc is what the speaker keeps of a Service (the informers' transform makes
// it): what ServiceFrom, the class check and Events read. About 300 bytes where
// a slimmed corev1.Service took 650.
type Svc struct {
	Meta   // name, namespace, UID, resourceVersion, labels, deletion
	Type   corev1.ServiceType
	Policy corev1.ServiceExternalTrafficPolicy
	Class  *string  // spec.loadBalancerClass
	IPs    []string // status.loadBalancer.ingress[].ip
}

// GetObjectKind implements runtime.Object; an Svc has no kind of its own.
func (s *Svc) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (s *Svc) DeepCopyObject() runtime.Object {
	c := *s
	c.Meta = s.Meta.deepCopy()
	if s.Class != nil {
		cl := *s.Class
		c.Class = &cl
	}
	c.IPs = slices.Clone(s.IPs)
	return &c
}

func svcFrom(s *corev1.Service) *Svc {
	out := &Svc{Meta: metaOf(&s.ObjectMeta), Type: known(s.Spec.Type, serviceTypes),
		Policy: known(s.Spec.ExternalTrafficPolicy, policies), Class: s.Spec.LoadBalancerClass}
	for _, in := range s.Status.LoadBalancer.Ingress {
		out.IPs = append(out.IPs, in.IP)
	}
	return out
}

// Service rebuilds the part of the Service the speaker reads (for the class
// check, ServiceFrom and Events); it is a new object each time.
func (s *Svc) Service() *corev1.Service {
	out := &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}, ObjectMeta: s.Meta.ObjectMeta()}
	out.Spec.Type, out.Spec.ExternalTrafficPolicy, out.Spec.LoadBalancerClass = s.Type, s.Policy, s.Class
	for _, ip := range s.IPs {
		out.Status.LoadBalancer.Ingress = append(out.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return out
}

var (
	serviceTypes = []corev1.ServiceType{corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeClusterIP,
		corev1.ServiceTypeNodePort, corev1.ServiceTypeExternalName}
	policies = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyLocal,
		corev1.ServiceExternalTrafficPolicyCluster}
)

// known returns the constant equal to v, if any, so that the cached objects
// share its bytes instead of each holding the decoded copy.
func known[T ~string](v T, consts []T) T {
	for _, c := range consts {
		if v == c {
			return c
		}
	}
	return v
}

// Slice is what the speaker keeps of an EndpointSlice (the informers'
// transform makes it): its identity, its Service and the answer to
// EndpointHealth's question, which nodes have an endpoint that can take
// traffic. About 300 bytes at any size, where a slimmed EndpointSlice with one
// endpoint took 900 (at 10,000 Services: 9 MiB less to hold and to scan).
type Slice struct {
	Meta           // name, namespace, resourceVersion, deletion
	Service string // the kubernetes.io/service-name label; "" if none
	Nodes   []string
	NoNode  bool // an endpoint that can take traffic names no node
}

// GetObjectKind implements runtime.Object; a Slice has no kind of its own.
func (s *Slice) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (s *Slice) DeepCopyObject() runtime.Object {
	c := *s
	c.Meta = s.Meta.deepCopy()
	c.Nodes = slices.Clone(s.Nodes)
	return &c
}

// sliceFrom makes the Slice of an EndpointSlice: each node once.
func sliceFrom(s *discoveryv1.EndpointSlice) *Slice {
	meta := metaOf(&s.ObjectMeta)
	meta.Labels, meta.UID = nil, ""
	out := &Slice{Meta: meta, Service: s.Labels[discoveryv1.LabelServiceName]}
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		switch {
		case !canServe(ep.Conditions):
		case ep.NodeName == nil:
			out.NoNode = true
		case !slices.Contains(out.Nodes, *ep.NodeName):
			out.Nodes = append(out.Nodes, *ep.NodeName)
		}
	}
	out.Nodes = slices.Clip(out.Nodes)
	return out
}

// health tells whether some endpoint on node, and some endpoint anywhere, can
// take traffic (EndpointHealth on the Slices).
func health(sl []*Slice, node string) (local, any bool) {
	for _, s := range sl {
		if s.NoNode || len(s.Nodes) > 0 {
			any = true
		}
		if slices.Contains(s.Nodes, node) {
			return true, true
		}
	}
	return false, any
}

// slimNode keeps of a Node what NodeFrom and L2NodeFrom read: name, labels,
// addresses and the NetworkUnavailable condition without its timestamps. In
// layer 2 mode the speaker watches every Node, whose status (images, volumes,
// heartbeat times) takes kilobytes each; and updates that change nothing read
// here then compare equal (nodeChanged).
func slimNode(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{TypeMeta: n.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID,
		ResourceVersion: n.ResourceVersion, Labels: n.Labels, DeletionTimestamp: n.DeletionTimestamp}}
	out.Status.Addresses = n.Status.Addresses
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{Type: c.Type, Status: c.Status})
		}
	}
	return out
}

// nodeChanged tells whether an update of a (slimmed) Node changes what the
// speaker reads of it.
func nodeChanged(old, cur *corev1.Node) bool {
	return old.UID != cur.UID || !maps.Equal(old.Labels, cur.Labels) ||
		!slices.Equal(old.Status.Addresses, cur.Status.Addresses) || !slices.Equal(old.Status.Conditions, cur.Status.Conditions)
}

// transform is the informers' transform: slim Services, EndpointSlices and
// Nodes, drop managed fields from everything else.
func transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return svcFrom(o), nil
	case *discoveryv1.EndpointSlice:
		return sliceFrom(o), nil
	case *corev1.Node:
		return slimNode(o), nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}
