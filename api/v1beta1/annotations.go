package v1beta1

// Annotations and labels on Services and Nodes that ecmplb honours. They are
// the ones MetalLB documents, so Services written for it keep working.
const (
	// AnnotationAddressPool asks for an IP from the named IPAddressPool.
	AnnotationAddressPool = "metallb.io/address-pool"
	// AnnotationLoadBalancerIPs asks for specific IPs, comma-separated, at most
	// one per IP family. It supersedes the deprecated spec.loadBalancerIP.
	AnnotationLoadBalancerIPs = "metallb.io/loadBalancerIPs"
	// AnnotationAllowSharedIP lets Services carrying the same value share an IP
	// when their ports do not collide.
	AnnotationAllowSharedIP = "metallb.io/allow-shared-ip"
	// AnnotationIPAllocatedFrom is written by the controller: the pool an IP
	// came from.
	AnnotationIPAllocatedFrom = "metallb.io/ip-allocated-from-pool"

	// LabelExcludeFromExternalLB on a Node keeps every speaker on it silent.
	LabelExcludeFromExternalLB = "node.kubernetes.io/exclude-from-external-load-balancers"

	// LabelServiceName and LabelServiceNamespace and LabelNode label the
	// ServiceBGPStatus and ServiceL2Status objects the speaker writes, so they can be listed per
	// Service or per node.
	LabelServiceName      = "metallb.io/service-name"
	LabelServiceNamespace = "metallb.io/service-namespace"
	LabelNode             = "metallb.io/node"
)
