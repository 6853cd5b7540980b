// Package kindbackend is the `kind` backend of the scenarios: the same
// scenario catalogue as the lab, on a real kind cluster (package kindconfig)
// where ecmplb runs as its DaemonSet and Deployment under kubelets, with the
// virtual ToRs of package fabric joined to the cluster's Docker network.
//
// Topology nodes node1..nodeN are the cluster's workers <cluster>-worker,
// <cluster>-worker2, ... at the addresses Docker gave them; the control-plane
// node is not part of any topology and runs no speaker. Endpoints are real
// echo pods (deploy/echo) pinned to nodes, flows are real TCP connections
// from the fabric's client through a ToR's kernel ECMP route, a node's
// kube-proxy and an echo pod.
//
// The package builds without Docker; using it needs Docker
// (hack/setup-docker.sh), the node image (hack/build-node-image.sh) and the
// image archives (make images).
package kindbackend
