package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFD defaults, in MetalLB's units (milliseconds).
const (
	DefaultBFDReceiveInterval  = 300
	DefaultBFDTransmitInterval = 300
	DefaultBFDDetectMultiplier = 3
	DefaultBFDEchoInterval     = 50
	DefaultBFDMinimumTTL       = 254
)

// BFDProfileSpec holds the timers of a BFD session (RFC 5880).
type BFDProfileSpec struct {
	// ReceiveInterval is the shortest interval, in milliseconds, at which
	// this system can receive control packets. Defaults to 300.
	// +optional
	// +kubebuilder:validation:Minimum:=10
	// +kubebuilder:validation:Maximum:=60000
	ReceiveInterval *uint32 `json:"receiveInterval,omitempty"`

	// TransmitInterval is the interval, in milliseconds and before jitter,
	// at which this system wants to send control packets. Defaults to 300.
	// +optional
	// +kubebuilder:validation:Minimum:=10
	// +kubebuilder:validation:Maximum:=60000
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`

	// DetectMultiplier is how many intervals without a packet declare the
	// session down. Defaults to 3.
	// +optional
	// +kubebuilder:validation:Minimum:=2
	// +kubebuilder:validation:Maximum:=255
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`

	// EchoInterval is the shortest interval, in milliseconds, at which this
	// system can receive echo packets. Defaults to 50.
	// +optional
	// +kubebuilder:validation:Minimum:=10
	// +kubebuilder:validation:Maximum:=60000
	EchoInterval *uint32 `json:"echoInterval,omitempty"`

	// EchoMode enables the echo function (single-hop only). Off by default.
	// +optional
	EchoMode *bool `json:"echoMode,omitempty"`

	// PassiveMode makes the session wait for the peer's first packet
	// before sending any.
	// +optional
	PassiveMode *bool `json:"passiveMode,omitempty"`

	// MinimumTTL is the lowest TTL accepted on multi-hop sessions. Defaults
	// to 254. Single-hop sessions always require 255 (RFC 5881).
	// +optional
	// +kubebuilder:validation:Minimum:=1
	// +kubebuilder:validation:Maximum:=254
	MinimumTTL *uint32 `json:"minimumTtl,omitempty"`
}

// BFDProfileStatus is empty.
type BFDProfileStatus struct{}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Passive Mode",type=boolean,JSONPath=`.spec.passiveMode`
// +kubebuilder:printcolumn:name="Transmit Interval",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Receive Interval",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`

// BFDProfile is a set of BFD timers a BGPPeer can refer to.
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BFDProfileSpec   `json:"spec,omitempty"`
	Status BFDProfileStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BFDProfileList is a list of BFDProfile.
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BFDProfile{}, &BFDProfileList{})
}
