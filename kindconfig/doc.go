// Package kindconfig holds what the kind backend needs to run ecmplb in kind
// clusters on machines without a container registry: the offline node image
// (built by hack/build-node-image.sh from Debian packages and the project's
// pinned Kubernetes binaries) and the tools that build it.
package kindconfig
