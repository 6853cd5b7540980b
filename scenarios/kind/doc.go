// Package kind is the groundwork of the scenarios' `kind` backend: real
// kubelets, kube-proxy and pods in kind clusters built offline
// (hack/build-node-image.sh, package kindconfig) on an internal Docker
// network.
//
// Its tests need Docker and the node image, so they are behind the build tag
// `kind` and are not part of `make test`:
//
//	hack/setup-docker.sh && hack/build-node-image.sh
//	go test -tags kind -count=1 -v ./scenarios/kind/
package kind
