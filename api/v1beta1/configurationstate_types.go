package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigurationResult says whether a component's configuration loaded.
// +kubebuilder:validation:Enum=Valid;Invalid;Unknown
type ConfigurationResult string

// The results MetalLB defines.
const (
	// ConfigurationValid: every object of the configuration was accepted.
	ConfigurationValid ConfigurationResult = "Valid"
	// ConfigurationInvalid: some object was rejected (ErrorSummary says which
	// and why).
	ConfigurationInvalid ConfigurationResult = "Invalid"
	// ConfigurationUnknown: the component has not reported yet.
	ConfigurationUnknown ConfigurationResult = "Unknown"
)

// Labels on ConfigurationState objects, as MetalLB sets them.
const (
	// LabelComponentType is "controller" or "speaker".
	LabelComponentType = "metallb.io/component-type"
	// LabelNodeName is the speaker's node.
	LabelNodeName = "metallb.io/node-name"
)

// ConfigurationStateStatus is what one component reports about the
// configuration it runs.
type ConfigurationStateStatus struct {
	// Result is Valid, Invalid or Unknown.
	// +optional
	Result ConfigurationResult `json:"result,omitempty"`
	// ErrorSummary lists the rejected objects and why, one per line; empty
	// when Result is Valid.
	// +optional
	ErrorSummary string `json:"errorSummary,omitempty"`
	// Conditions are the component's conditions (type "configValid" in
	// ecmplb).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Result",type=string,JSONPath=`.status.result`
// +kubebuilder:printcolumn:name="ErrorSummary",type=string,JSONPath=`.status.errorSummary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ConfigurationState reports whether a component's configuration loaded:
// "controller" for the controller, "speaker-<node>" for each speaker
// (labels metallb.io/component-type and metallb.io/node-name), as MetalLB's.
type ConfigurationState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Status ConfigurationStateStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ConfigurationStateList is a list of ConfigurationState.
type ConfigurationStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConfigurationState `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ConfigurationState{}, &ConfigurationStateList{})
}
