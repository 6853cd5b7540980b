// Package v1beta1 holds the Go types of the metallb.io/v1beta1 custom
// resources that ecmplb reads: IPAddressPool, BGPPeer, BGPAdvertisement,
// BFDProfile, L2Advertisement and Community, plus ServiceBGPStatus, which the
// speaker writes.
//
// Field names, JSON names, defaults and ranges follow MetalLB's documented
// API so that existing manifests apply unchanged. Where ecmplb differs it says
// so on the field: BGPPeer in v1beta1 also accepts the fields MetalLB only
// introduced in v1beta2 (connectTime, passwordSecret, enableGracefulRestart,
// vrf, ...), so an object round-trips through v1beta1 and v1beta2 (package
// api/v1beta2, the storage version) with no conversion loss.
//
// +kubebuilder:object:generate=true
// +groupName=metallb.io
package v1beta1
