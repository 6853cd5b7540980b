package kindconfig

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// DefaultNodeImage is the node image hack/build-node-image.sh builds.
const DefaultNodeImage = "ecmplb/kind-node:v1.34.4"

// NodeImageEnv names the environment variable that picks another node
// image for every cluster (make e2e NODE_IMAGE=... sets it).
const NodeImageEnv = "ECMPLB_NODE_IMAGE"

// StockImage reports whether image is one of kind's published node images
// (kindest/node), which bring their own CNI (kindnetd) and etcd, instead of
// the offline image hack/build-node-image.sh builds.
func StockImage(image string) bool {
	name, _, _ := strings.Cut(image, "@")
	name, _, _ = strings.Cut(name, ":")
	name = strings.TrimPrefix(strings.TrimPrefix(name, "docker.io/"), "registry-1.docker.io/")
	return name == "kindest/node"
}

// EtcdImageTag is the tag of the etcd image preloaded in the node image:
// hack/versions.env's ETCD_VERSION (what the lab runs too). kubeadm 1.34.4
// would ask for 3.6.5-0, so KindConfig tells it to use this one.
const EtcdImageTag = "3.6.4-0"

// Defaults of Options.
const (
	DefaultWorkers       = 2
	DefaultPodSubnet     = "10.244.0.0/16"
	DefaultServiceSubnet = "10.96.0.0/16"
)

// Options describe a cluster.
type Options struct {
	// Name is the kind cluster name; empty picks "elb-" and a random suffix.
	// Node containers are named <Name>-control-plane, <Name>-worker, ...
	Name string
	// NodeImage is the node image: when empty, $ECMPLB_NODE_IMAGE, else
	// DefaultNodeImage. A stock kind image (StockImage: kindest/node:...,
	// where a registry is reachable) runs kind's own CNI and etcd.
	NodeImage string
	// Workers is the number of worker nodes besides the one control-plane
	// node. Zero means DefaultWorkers; use NoWorkers for none.
	Workers int
	// NoWorkers makes a single-node cluster (Workers is ignored).
	NoWorkers bool
	// Network is the Docker network the nodes join. Empty means a network
	// named like the cluster, created with --internal by Create and removed
	// by Delete.
	Network string
	// NetworkSubnet, NetworkGateway and NetworkIPRange address the network
	// Create makes (DefaultNetworkSubnet, DefaultNetworkGateway and
	// DefaultNetworkIPRange when empty); see ParseNetworkPlan. Create refuses
	// a subnet that overlaps a route the host already has.
	NetworkSubnet, NetworkGateway, NetworkIPRange string
	// PodSubnet and ServiceSubnet default to DefaultPodSubnet and
	// DefaultServiceSubnet.
	PodSubnet, ServiceSubnet string
	// Retain keeps the nodes of a failed Create (and Smoke keeps a failed
	// cluster) for debugging; Delete still removes everything.
	Retain bool
}

var clusterName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

// withDefaults fills in the defaults and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		b := make([]byte, 3)
		if _, err := rand.Read(b); err != nil {
			return o, err
		}
		o.Name = "elb-" + hex.EncodeToString(b)
	}
	if !clusterName.MatchString(o.Name) {
		return o, fmt.Errorf("cluster name %q: want lower-case letters, digits and '-', at most 32", o.Name)
	}
	if o.NodeImage == "" {
		o.NodeImage = os.Getenv(NodeImageEnv)
	}
	if o.NodeImage == "" {
		o.NodeImage = DefaultNodeImage
	}
	if o.NoWorkers {
		o.Workers = 0
	} else if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.Workers < 0 {
		return o, fmt.Errorf("cluster %q: %d workers", o.Name, o.Workers)
	}
	if o.Network == "" {
		o.Network = o.Name
	}
	plan, err := ParseNetworkPlan(o.NetworkSubnet, o.NetworkGateway, o.NetworkIPRange)
	if err != nil {
		return o, fmt.Errorf("cluster %q: %w", o.Name, err)
	}
	o.NetworkSubnet, o.NetworkGateway, o.NetworkIPRange = plan.Subnet.String(), plan.Gateway.String(), plan.IPRange.String()
	if o.PodSubnet == "" {
		o.PodSubnet = DefaultPodSubnet
	}
	if o.ServiceSubnet == "" {
		o.ServiceSubnet = DefaultServiceSubnet
	}
	return o, nil
}

// KindConfig is the kind cluster configuration for o (with defaults
// applied): one control-plane node and o.Workers workers on o.NodeImage,
// IPv4, kube-proxy in iptables mode, and no default CNI: kindnetd is not
// available without a registry, so Create wires pod networking itself
// (see CNIConfig and PodRoutes). etcd runs the preloaded EtcdImageTag. A
// stock kindest/node image keeps kind's defaults for both (StockImage).
func KindConfig(o Options) *v1alpha4.Cluster {
	nodes := []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole, Image: o.NodeImage}}
	for range o.Workers {
		nodes = append(nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole, Image: o.NodeImage})
	}
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     o.Name,
		Nodes:    nodes,
		Networking: v1alpha4.Networking{
			IPFamily:          v1alpha4.IPv4Family,
			DisableDefaultCNI: !StockImage(o.NodeImage),
			PodSubnet:         o.PodSubnet,
			ServiceSubnet:     o.ServiceSubnet,
			KubeProxyMode:     v1alpha4.IPTablesProxyMode,
		},
	}
	// No apiVersion: kind applies it to whichever kubeadm API it writes.
	if !StockImage(o.NodeImage) {
		c.KubeadmConfigPatches = []string{"kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: \"" + EtcdImageTag + "\"\n"}
	}
	v1alpha4.SetDefaultsCluster(c)
	return c
}
