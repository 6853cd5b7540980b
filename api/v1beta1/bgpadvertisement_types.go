package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default aggregation lengths: announce each Service IP as a host route.
const (
	DefaultAggregationLength   = 32
	DefaultAggregationLengthV6 = 128
)

// BGPAdvertisementSpec says which pools' IPs are announced over BGP, from
// which nodes, to which peers and with which attributes.
// +kubebuilder:validation:XValidation:rule="!has(self.serviceSelectors) || self.serviceSelectors.size() == 0 || !has(self.aggregationLength) || self.aggregationLength == 32",message="spec.aggregationLength: only the default 32 can be used with spec.serviceSelectors",fieldPath=".aggregationLength"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceSelectors) || self.serviceSelectors.size() == 0 || !has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128",message="spec.aggregationLengthV6: only the default 128 can be used with spec.serviceSelectors",fieldPath=".aggregationLengthV6"
type BGPAdvertisementSpec struct {
	// AggregationLength masks each IPv4 Service IP to this length before it
	// is announced, rolling several /32s into one prefix. Defaults to 32.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default:=32
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the same for IPv6. Defaults to 128.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default:=128
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the BGP LOCAL_PREF attribute; it is sent to iBGP peers
	// only. 0 means unset.
	// +optional
	LocalPref uint32 `json:"localPref,omitempty"`

	// Communities attached to the routes: standard "65000:100", large
	// "large:65000:1:2", or the name of an alias in a Community resource.
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="!self.contains(':') || (self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535) || (self.matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && int(self.split(':')[1]) <= 4294967295 && int(self.split(':')[2]) <= 4294967295 && int(self.split(':')[3]) <= 4294967295)",message="spec.communities entries must be a community A:B (16-bit numbers), large:A:B:C (32-bit numbers) or the name of a Community alias"
	Communities []string `json:"communities,omitempty"`

	// IPAddressPools names the pools whose IPs this advertisement covers.
	// With neither pools nor pool selectors it covers every pool.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// IPAddressPoolSelectors select the covered pools by label.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// NodeSelectors limit the nodes that announce; empty means every node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Peers limits the BGPPeers (by name) that receive the routes; empty
	// means every peer.
	// +optional
	Peers []string `json:"peers,omitempty"`

	// ServiceSelectors limit the Services whose IPs are announced; empty
	// means every Service.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// BGPAdvertisementStatus is empty.
type BGPAdvertisementStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=10

// BGPAdvertisement announces the IPs of some pools over BGP.
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPAdvertisementSpec   `json:"spec,omitempty"`
	Status BGPAdvertisementStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BGPAdvertisementList is a list of BGPAdvertisement.
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPAdvertisement{}, &BGPAdvertisementList{})
}
