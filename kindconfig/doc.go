// Package kindconfig runs ecmplb's kind clusters on machines without a
// container registry: the offline node image (built by
// hack/build-node-image.sh from Debian packages and the project's pinned
// Kubernetes binaries, with the control-plane images preloaded) and Cluster,
// which drives sigs.k8s.io/kind as a library.
//
// Network safety: a cluster's nodes sit on a Docker network created with
// --internal. Docker 20.10 still gives each node a default route to the
// bridge's address on the host, but its isolation rules drop every frame
// that would leave the bridge for another interface; the one rule Cluster
// adds (DOCKER-USER, see forwardRule) admits only frames that enter and
// leave that same bridge, so pod and Service traffic between nodes works and
// nothing reaches the host's default route.
//
// Pod networking needs no CNI image: each node gets a bridge + host-local
// CNI configuration for its pod CIDR (Debian's plugins) and routes to the
// other nodes' pod CIDRs. CoreDNS runs without an upstream resolver.
package kindconfig
