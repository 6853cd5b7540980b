// Package v1beta2 holds the Go type of BGPPeer in metallb.io/v1beta2, the
// version MetalLB (v0.14 and later) stores BGPPeers in and the one ecmplb's
// controller and speaker read. The other metallb.io kinds exist in v1beta1
// only (package api/v1beta1).
//
// v1beta1 and v1beta2 BGPPeers share one JSON form in ecmplb: v1beta1's
// nodeSelectors (MetalLB's own NodeSelector type) are written exactly like a
// label selector, and ecmplb's v1beta1 schema also accepts every v1beta2
// field. Converting between the two therefore only changes apiVersion, so the
// CRD in deploy/crds (and the one the tests install) keeps the default
// conversion strategy, None, and stays lossless. The Helm chart's CRD uses
// the Webhook strategy instead (internal/conversion, served by the
// controller at /convert), so that in production the typed conversion, which
// refuses any field it does not know, guards the boundary; the controller and
// the speaker read the storage version, which needs no conversion, so an
// outage of that webhook never breaks their watches.
//
// +kubebuilder:object:generate=true
// +groupName=metallb.io
package v1beta2
