// Package crdtest checks the generated CRDs against a real kube-apiserver:
// they install (CEL rules within the apiserver's cost limits), MetalLB's
// documented examples apply, and the bad manifests that need no other
// object are refused by the CRDs' own rules, with the webhook not running.
package crdtest
