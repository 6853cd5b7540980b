package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommunityAlias names a BGP community value so advertisements can use the
// name.
type CommunityAlias struct {
	// Name is the alias used in BGPAdvertisement.spec.communities.
	Name string `json:"name,omitempty"`
	// Value is a standard ("65000:100") or large ("large:65000:1:2") community.
	Value string `json:"value,omitempty"`
}

// CommunitySpec is a list of community aliases.
type CommunitySpec struct {
	// Communities are the aliases.
	// +optional
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityStatus is empty.
type CommunityStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status

// Community holds named BGP community values.
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CommunitySpec   `json:"spec,omitempty"`
	Status CommunityStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// CommunityList is a list of Community.
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Community{}, &CommunityList{})
}
