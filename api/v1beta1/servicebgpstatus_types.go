package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceBGPStatusSpec is empty; the object only carries status.
type ServiceBGPStatusSpec struct{}

// ServiceBGPStatusStatus says which peers of one node carry one Service's
// routes.
type ServiceBGPStatusStatus struct {
	// Node is the announcing node.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="Value is immutable"
	Node string `json:"node,omitempty"`
	// ServiceName is the announced Service's name.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="Value is immutable"
	ServiceName string `json:"serviceName,omitempty"`
	// ServiceNamespace is the announced Service's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="Value is immutable"
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Peers are the BGPPeers (by name) the routes are announced to.
	// +optional
	Peers []string `json:"peers,omitempty"`
	// Prefixes are the announced prefixes (ecmplb addition).
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
	// EstablishedPeers are the peers whose session is up, so the routes are
	// actually on the wire (ecmplb addition).
	// +optional
	EstablishedPeers []string `json:"establishedPeers,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.status.peers`

// ServiceBGPStatus is written by the speaker on each node for each Service it
// announces. Unlike MetalLB's, its CRD has no status subresource: the speaker
// creates each object with its status in one request.
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceBGPStatusSpec   `json:"spec,omitempty"`
	Status ServiceBGPStatusStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ServiceBGPStatusList is a list of ServiceBGPStatus.
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ServiceBGPStatus{}, &ServiceBGPStatusList{})
}
