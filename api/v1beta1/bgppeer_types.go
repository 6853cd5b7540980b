package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults the speaker applies to a BGPPeer that leaves a field unset.
const (
	DefaultBGPPort       = 179
	DefaultHoldTimeSec   = 90
	DefaultNamespaceName = "metallb-system"
)

// DynamicASNMode says how the peer's AS number is learned when peerASN is
// not given.
// +kubebuilder:validation:Enum=internal;external
type DynamicASNMode string

// Dynamic ASN modes.
const (
	// InternalASNMode accepts only a peer whose ASN equals myASN (iBGP).
	InternalASNMode DynamicASNMode = "internal"
	// ExternalASNMode accepts only a peer whose ASN differs from myASN (eBGP).
	ExternalASNMode DynamicASNMode = "external"
)

// NodeSelector is MetalLB's v1beta1 node selector. Its JSON form is that of
// a label selector (v1beta2 uses metav1.LabelSelector).
// +structType=atomic
type NodeSelector struct {
	// MatchLabels selects nodes that carry all these labels.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// MatchExpressions selects nodes that match all these requirements.
	// +optional
	// +listType=atomic
	MatchExpressions []MatchExpression `json:"matchExpressions,omitempty"`
}

// MatchExpression is one requirement of a NodeSelector, as in a label
// selector.
type MatchExpression struct {
	// Key is the label key.
	Key string `json:"key"`

	// Operator is In, NotIn, Exists or DoesNotExist.
	Operator string `json:"operator"`

	// Values are the label values for In and NotIn. MetalLB's v1beta1 schema
	// requires at least one; ecmplb accepts none too, as v1beta2 does, so
	// Exists and DoesNotExist round-trip between the versions.
	// +optional
	// +listType=atomic
	Values []string `json:"values,omitempty"`
}

// BGPPeerSpec describes one BGP session the speakers on matching nodes open.
//
// The first group of fields is MetalLB's v1beta1 API. The fields marked
// "(v1beta2)" are accepted in v1beta1 by ecmplb too, so every field
// round-trips through either version (api/v1beta2 is the storage version).
// The rules below are the same in v1beta2 (keep them in step).
// +kubebuilder:validation:XValidation:rule="has(self.peerASN) || has(self.dynamicASN)",message="one of peerASN or dynamicASN must be set",fieldPath=".peerASN"
// +kubebuilder:validation:XValidation:rule="!(has(self.peerASN) && has(self.dynamicASN))",message="peerASN and dynamicASN are mutually exclusive"
// +kubebuilder:validation:XValidation:rule="!has(self.dynamicASN)",message="spec.dynamicASN (learning the router's AS number) is not supported by ecmplb yet; set spec.peerASN"
// +kubebuilder:validation:XValidation:rule="!has(self.interface)",message="spec.interface (unnumbered BGP) is not supported by ecmplb yet; set spec.peerAddress"
// +kubebuilder:validation:XValidation:rule="!has(self.vrf) || self.vrf.size() == 0",message="spec.vrf (peering from a host VRF) is not supported by ecmplb yet; the speaker peers from the default VRF only",fieldPath=".vrf"
// +kubebuilder:validation:XValidation:rule="!has(self.keepaliveTime) || duration(self.keepaliveTime) < (has(self.holdTime) ? duration(self.holdTime) : duration('90s'))",message="spec.keepaliveTime must be lower than spec.holdTime (90s when unset)",fieldPath=".keepaliveTime"
// +kubebuilder:validation:XValidation:rule="!(has(self.password) && self.password.size() > 0 && has(self.passwordSecret) && has(self.passwordSecret.name) && self.passwordSecret.name.size() > 0)",message="spec.passwordSecret must not be set together with spec.password",fieldPath=".passwordSecret"
// +kubebuilder:validation:XValidation:rule="!(has(self.ebgpMultiHop) && self.ebgpMultiHop && has(self.peerASN) && self.peerASN == self.myASN)",message="spec.ebgpMultiHop must not be set for an iBGP peer (peerASN equal to myASN)",fieldPath=".ebgpMultiHop"
type BGPPeerSpec struct {
	// MyASN is the AS number of the node's end of the session.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// ASN is the AS number expected from the router.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ASN uint32 `json:"peerASN,omitempty"`

	// DynamicASN accepts the router's ASN as announced, limited to iBGP
	// (internal) or eBGP (external). Not supported by ecmplb yet: refused.
	// (v1beta2)
	// +optional
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`

	// Address is the router's address to dial.
	// +kubebuilder:validation:MinLength=1
	Address string `json:"peerAddress"`

	// Interface is the node interface for unnumbered BGP peering, instead of
	// peerAddress. Not supported by ecmplb yet: refused. (v1beta2)
	// +optional
	Interface string `json:"interface,omitempty"`

	// SrcAddress is the local address to dial from.
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// Port is the router's BGP port. Defaults to 179.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16384
	Port uint16 `json:"peerPort,omitempty"`

	// HoldTime is the requested BGP hold time (RFC 4271). Defaults to 90s;
	// it must be at least 3s (0s is refused).
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('3s') && duration(self) <= duration('65535s')",message="must be between 3s and 65535s (0s, no keepalives, is not supported: the embedded GoBGP would run 90s instead)"
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the requested BGP keepalive interval. Defaults to a
	// third of the hold time; it must be lower than the hold time.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be positive"
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between connection attempts. (v1beta2)
	// +optional
	// +kubebuilder:validation:XValidation:message="connect time should be between 1 seconds to 65535",rule="duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535"
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// RouterID is the BGP router ID the node presents. Defaults to the node's
	// address.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.size() == 0 || (isIP(self) && ip(self).family() == 4)",message="must be an IPv4 address"
	RouterID string `json:"routerID,omitempty"`

	// NodeSelectors limit the session to nodes matching one of them; empty
	// means every node.
	// +optional
	NodeSelectors []NodeSelector `json:"nodeSelectors,omitempty"`

	// Password enables TCP MD5 authentication with this shared secret.
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecret names a Secret of type kubernetes.io/basic-auth, in the
	// speaker's namespace, whose "password" key holds the TCP MD5 secret.
	// Mutually exclusive with password. (v1beta2)
	// (omitzero: an unset reference is left out, not written as {}.)
	// +optional
	PasswordSecret corev1.SecretReference `json:"passwordSecret,omitzero"`

	// BFDProfile names the BFDProfile of a BFD session run beside this BGP
	// session; when BFD goes down the BGP session is reset at once. Unlike
	// MetalLB's native mode, ecmplb's speaker runs BFD itself.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// EnableGracefulRestart advertises the graceful restart capability
	// (RFC 4724), so routers keep forwarding while a speaker restarts. (v1beta2)
	// +optional
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`

	// EBGPMultiHop marks an eBGP peer that is more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// VRFName is the host VRF to peer from. Not supported by ecmplb yet: it
	// peers from the default VRF only and refuses a peer that sets it. (v1beta2)
	// +optional
	VRFName string `json:"vrf,omitempty"`

	// DisableMP keeps IPv4 and IPv6 routes on separate sessions. (v1beta2)
	// +optional
	DisableMP bool `json:"disableMP,omitempty"`

	// DualStackAddressFamily enables both address families on the session,
	// whatever the family of peerAddress: it carries the routes of both, those
	// of the other family with the node's address of that family as next-hop.
	// Without it a session carries the routes of its peerAddress's family
	// only. (v1beta2)
	// +optional
	DualStackAddressFamily bool `json:"dualStackAddressFamily,omitempty"`
}

// BGPPeerStatus is empty: session state is reported by ServiceBGPStatus,
// metrics and the speaker's logs.
type BGPPeerStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=string,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=string,JSONPath=`.spec.ebgpMultiHop`

// BGPPeer is a router the speakers open a BGP session to, in MetalLB's
// deprecated but served v1beta1; ecmplb stores and reads v1beta2.
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPPeerSpec   `json:"spec,omitempty"`
	Status BGPPeerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BGPPeerList is a list of BGPPeer.
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPPeer{}, &BGPPeerList{})
}
