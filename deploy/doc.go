// Package deploy holds ecmplb's manifests: the generated CRDs (crds/) and the
// example configuration users start from (examples/). Its tests apply them to
// a real kube-apiserver.
package deploy
