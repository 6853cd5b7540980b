// Package conversion converts BGPPeers between metallb.io/v1beta1 (MetalLB's
// deprecated, still served version) and v1beta2 (the storage version), as
// typed pure functions (bgppeer.go) and as the CRD conversion webhook
// (webhook.go, served by the controller at /convert).
//
// Both versions have the same fields in ecmplb, so a conversion never loses
// anything; the webhook decodes strictly and refuses an object with a field
// it does not know rather than dropping it.
package conversion
