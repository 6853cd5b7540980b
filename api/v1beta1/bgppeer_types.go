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

// BGPPeerSpec describes one BGP session the speakers on matching nodes open.
//
// The first group of fields is MetalLB's v1beta1 API. The fields marked
// "(v1beta2)" are accepted in v1beta1 by ecmplb too, so the same schema can
// serve a future v1beta2 version.
// +kubebuilder:validation:XValidation:rule="has(self.peerASN) || has(self.dynamicASN)",message="one of peerASN or dynamicASN must be set"
// +kubebuilder:validation:XValidation:rule="!(has(self.peerASN) && has(self.dynamicASN))",message="peerASN and dynamicASN are mutually exclusive"
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
	// (internal) or eBGP (external). (v1beta2)
	// +optional
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`

	// Address is the router's address to dial.
	// +kubebuilder:validation:MinLength=1
	Address string `json:"peerAddress"`

	// SrcAddress is the local address to dial from.
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// Port is the router's BGP port. Defaults to 179.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16384
	Port uint16 `json:"peerPort,omitempty"`

	// HoldTime is the requested BGP hold time (RFC 4271). Defaults to 90s;
	// it must be 0 or at least 3s.
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the requested BGP keepalive interval. Defaults to a
	// third of the hold time; it must not exceed the hold time.
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between connection attempts. (v1beta2)
	// +optional
	// +kubebuilder:validation:XValidation:message="connect time should be between 1 seconds to 65535",rule="duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535"
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// RouterID is the BGP router ID the node presents. Defaults to the node's
	// address.
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// NodeSelectors limit the session to nodes matching one of them; empty
	// means every node. MetalLB's v1beta1 NodeSelector (matchLabels,
	// matchExpressions) has the same JSON form as a label selector.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Password enables TCP MD5 authentication with this shared secret.
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecret names a Secret of type kubernetes.io/basic-auth, in the
	// speaker's namespace, whose "password" key holds the TCP MD5 secret.
	// Mutually exclusive with password. (v1beta2)
	// +optional
	PasswordSecret corev1.SecretReference `json:"passwordSecret,omitempty"`

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

	// VRFName is the host VRF to peer from. Accepted for compatibility;
	// ecmplb peers from the default VRF only. (v1beta2)
	// +optional
	VRFName string `json:"vrf,omitempty"`

	// DisableMP keeps IPv4 and IPv6 routes on separate sessions. (v1beta2)
	// +optional
	DisableMP bool `json:"disableMP,omitempty"`
}

// BGPPeerStatus is empty: session state is reported by ServiceBGPStatus,
// metrics and the speaker's logs.
type BGPPeerStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=string,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=string,JSONPath=`.spec.ebgpMultiHop`

// BGPPeer is a router the speakers open a BGP session to.
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
