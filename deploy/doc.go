// Package deploy holds ecmplb's manifests: the generated CRDs (crds/), the
// Helm chart (chart/ecmplb, linted and rendered by package helmchart), the
// plain manifests rendered from it (ecmplb.yaml), the images (package
// images, make images) and the example configuration users start from
// (examples/). Its tests apply them to a real kube-apiserver.
package deploy

// The plain manifests are the chart's rendering with default values.
//go:generate go run ./cmd/manifests -repo ..
