package kindconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster"
)

// kindNetworkEnv is how kind's Docker provider is told which network to use
// (read when a provider is created and during Create). It is process-wide,
// so Create serializes on createMu.
const kindNetworkEnv = "KIND_EXPERIMENTAL_DOCKER_NETWORK"

var createMu sync.Mutex

// APIServerPort is the API server's port on the control-plane node.
const APIServerPort = 6443

// Cluster is a kind cluster whose nodes sit on an internal Docker network:
// nothing the cluster sends is routed off this machine. Create it with New
// and Create; Delete removes everything, also after a failed or interrupted
// Create.
type Cluster struct {
	opts       Options
	log        *slog.Logger
	provider   *cluster.Provider
	ownNetwork bool

	mu         sync.Mutex
	dir        string
	kubeconfig string
	client     kubernetes.Interface
}

// New prepares a cluster; it creates nothing yet.
func New(o Options, log *slog.Logger) (*Cluster, error) {
	own := o.Network == ""
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("cluster", o.Name)
	return &Cluster{
		opts:       o,
		log:        log,
		ownNetwork: own,
		provider:   cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(slogLogger{log})),
	}, nil
}

// Name is the kind cluster name.
func (c *Cluster) Name() string { return c.opts.Name }

// Network is the Docker network the nodes are on.
func (c *Cluster) Network() string { return c.opts.Network }

// ControlPlane is the control-plane node's container (and node) name.
func (c *Cluster) ControlPlane() string { return c.opts.Name + "-control-plane" }

// Kubeconfig is the path of a kubeconfig that reaches the API server from
// this host (at the control-plane's address on the cluster network); set by
// Create.
func (c *Cluster) Kubeconfig() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kubeconfig
}

// Client is a clientset for the cluster; set by Create.
func (c *Cluster) Client() kubernetes.Interface {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// Create creates the network (unless Options.Network named an existing one),
// having first removed what runs that have ended left (RemoveStale), then
// the kind cluster, a host kubeconfig, and the pod network, and takes
// CoreDNS's upstream away (WithoutUpstream). When ctx ends
// during kind's work, the nodes are deleted at once so that it fails fast.
// On error the caller still calls Delete.
func (c *Cluster) Create(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "ecmplb-kind-"+c.opts.Name+"-")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.dir = dir
	c.mu.Unlock()
	if c.ownNetwork {
		plan, err := ParseNetworkPlan(c.opts.NetworkSubnet, c.opts.NetworkGateway, c.opts.NetworkIPRange)
		if err != nil {
			return err
		}
		// A run killed before its Delete left its cluster and network, on
		// the same default subnet: clear them before checking the subnet.
		if _, err := RemoveStale(ctx, c.log); err != nil {
			c.log.Warn("removing the leftovers of runs that ended", "err", err)
		}
		owner, err := thisProcess(c.opts.Name)
		if err != nil {
			return err
		}
		if err := createNetwork(ctx, c.opts.Network, plan, owner); err != nil {
			return err
		}
		c.log.Info("created internal docker network", "network", c.opts.Network, "bridge", BridgeName(c.opts.Network))
	}
	if err := c.createNodes(ctx, dir); err != nil {
		return err
	}
	if err := c.writeKubeconfig(ctx, dir); err != nil {
		return err
	}
	if !StockImage(c.opts.NodeImage) { // a stock image runs kindnetd
		if err := c.setupPodNetwork(ctx); err != nil {
			return err
		}
	}
	return c.dropDNSUpstream(ctx)
}

func (c *Cluster) createNodes(ctx context.Context, dir string) error {
	createMu.Lock()
	defer createMu.Unlock()
	old, had := os.LookupEnv(kindNetworkEnv)
	os.Setenv(kindNetworkEnv, c.opts.Network)
	defer func() {
		if had {
			os.Setenv(kindNetworkEnv, old)
		} else {
			os.Unsetenv(kindNetworkEnv)
		}
	}()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			c.log.Warn("interrupted: deleting the nodes kind is setting up")
			if err := c.provider.Delete(c.opts.Name, c.kindKubeconfig(dir)); err != nil {
				c.log.Error("delete nodes", "err", err)
			}
		case <-done:
		}
	}()
	start := time.Now()
	err := c.provider.Create(c.opts.Name,
		cluster.CreateWithV1Alpha4Config(KindConfig(c.opts)),
		cluster.CreateWithKubeconfigPath(c.kindKubeconfig(dir)),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
		cluster.CreateWithRetain(c.opts.Retain))
	if ctx.Err() != nil {
		return fmt.Errorf("create cluster %s: %w", c.opts.Name, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("create cluster %s: %w", c.opts.Name, err)
	}
	c.log.Info("kind created the nodes", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Cluster) kindKubeconfig(dir string) string { return filepath.Join(dir, "kind.kubeconfig") }

// writeKubeconfig writes a kubeconfig for this host: kind's names the
// endpoint from inside the control-plane node, since Docker publishes no
// ports on an internal network.
func (c *Cluster) writeKubeconfig(ctx context.Context, dir string) error {
	raw, err := c.provider.KubeConfig(c.opts.Name, false)
	if err != nil {
		return fmt.Errorf("kubeconfig of %s: %w", c.opts.Name, err)
	}
	cfg, err := clientcmd.Load([]byte(raw))
	if err != nil {
		return fmt.Errorf("kubeconfig of %s: %w", c.opts.Name, err)
	}
	ip, err := containerIP(ctx, c.ControlPlane(), c.opts.Network)
	if err != nil {
		return err
	}
	server := "https://" + netip.AddrPortFrom(ip, APIServerPort).String()
	for _, cl := range cfg.Clusters {
		cl.Server = server
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return err
	}
	rest, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.kubeconfig, c.client = path, client
	c.mu.Unlock()
	c.log.Info("kubeconfig written", "path", path, "server", server)
	return nil
}

// setupPodNetwork waits for every node's pod CIDR, then writes each node's
// CNI configuration and its routes to the other nodes' pod CIDRs.
func (c *Cluster) setupPodNetwork(ctx context.Context) error {
	want := 1 + c.opts.Workers
	var nets []NodeNet
	err := poll(ctx, time.Second, 2*time.Minute, func() (bool, error) {
		nodes, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			c.log.Debug("list nodes", "err", err)
			return false, nil
		}
		nets = nets[:0]
		for _, n := range nodes.Items {
			nn, ok := nodeNet(&n)
			if !ok {
				return false, nil
			}
			nets = append(nets, nn)
		}
		return len(nets) == want, nil
	})
	if err != nil {
		return fmt.Errorf("pod CIDRs of %d nodes: %w", want, err)
	}
	routes, err := PodRoutes(nets)
	if err != nil {
		return err
	}
	for _, n := range nets {
		conf, err := CNIConfig(n.PodCIDR)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		for _, r := range routes[n.Name] {
			if _, err := run(ctx, nil, "docker", "exec", n.Name, "ip", "route", "replace", r.Dst.String(), "via", r.Via.String()); err != nil {
				return fmt.Errorf("node %s: route: %w", n.Name, err)
			}
		}
		// Written beside and renamed, so containerd never reads half a file.
		script := fmt.Sprintf("mkdir -p %[1]s && cat >%[2]s.tmp && mv %[2]s.tmp %[2]s", filepath.Dir(CNIConfigPath), CNIConfigPath)
		if _, err := run(ctx, strings.NewReader(string(conf)), "docker", "exec", "-i", n.Name, "sh", "-c", script); err != nil {
			return fmt.Errorf("node %s: CNI configuration: %w", n.Name, err)
		}
		c.log.Info("pod network configured", "node", n.Name, "ip", n.IP, "podCIDR", n.PodCIDR, "routes", len(routes[n.Name]))
	}
	return nil
}

// nodeNet reads a node's address and pod CIDR; false until both are set.
func nodeNet(n *corev1.Node) (NodeNet, bool) {
	cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return NodeNet{}, false
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil && ip.Is4() {
			return NodeNet{Name: n.Name, IP: ip, PodCIDR: cidr}, true
		}
	}
	return NodeNet{}, false
}

// WaitNodesReady waits until the cluster has all its nodes and every one
// reports Ready.
func (c *Cluster) WaitNodesReady(ctx context.Context, timeout time.Duration) error {
	want := 1 + c.opts.Workers
	last := ""
	return poll(ctx, time.Second, timeout, func() (bool, error) {
		nodes, err := c.Client().CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, n := range nodes.Items {
			if nodeReady(&n) {
				ready++
			}
		}
		if s := fmt.Sprintf("%d/%d", ready, want); s != last {
			last = s
			c.log.Info("nodes ready", "ready", s)
		}
		return len(nodes.Items) == want && ready == want, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitPodsReady waits until every pod in namespace is Ready (and there is
// at least one).
func (c *Cluster) WaitPodsReady(ctx context.Context, namespace string, timeout time.Duration) error {
	last := ""
	return poll(ctx, time.Second, timeout, func() (bool, error) {
		pods, err := c.Client().CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := 0
		for _, p := range pods.Items {
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if s := fmt.Sprintf("%d/%d", ready, len(pods.Items)); s != last {
			last = s
			c.log.Info("pods ready", "namespace", namespace, "ready", s)
		}
		return len(pods.Items) > 0 && ready == len(pods.Items), nil
	})
}

// Kubectl runs kubectl inside the control-plane node (its admin
// kubeconfig) and returns its output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, nil, "docker", append([]string{"exec", c.ControlPlane(),
		"kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"}, args...)...)
}

// Delete removes the cluster's nodes, its network (when Create made it) and
// its files. It is safe to call more than once and after a failed Create.
func (c *Cluster) Delete() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	kc := ""
	if c.dir != "" {
		kc = c.kindKubeconfig(c.dir)
	}
	if err := c.provider.Delete(c.opts.Name, kc); err != nil {
		errs = append(errs, fmt.Errorf("delete cluster %s: %w", c.opts.Name, err))
	}
	if c.ownNetwork {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeNetwork(ctx, c.opts.Network); err != nil {
			errs = append(errs, err)
		}
	}
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	c.client, c.kubeconfig = nil, ""
	if len(errs) == 0 {
		c.log.Info("cluster deleted")
	}
	return errors.Join(errs...)
}

// poll calls f every interval until it reports done, it fails, ctx ends or
// timeout passes.
func poll(ctx context.Context, interval, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Nodes are the names of the cluster's node containers (and Kubernetes
// nodes).
func (c *Cluster) Nodes() ([]string, error) {
	nodes, err := c.provider.ListNodes(c.opts.Name)
	if err != nil {
		return nil, fmt.Errorf("nodes of %s: %w", c.opts.Name, err)
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.String())
	}
	return names, nil
}

// LoadImage imports a docker-archive or OCI image tarball (for example one
// written by package ociimage) into containerd's k8s.io namespace on every
// node, where pods with imagePullPolicy Never or IfNotPresent find it: the
// registry-free counterpart of pushing an image.
func (c *Cluster) LoadImage(ctx context.Context, archive string) error {
	nodes, err := c.Nodes()
	if err != nil {
		return err
	}
	for _, n := range nodes {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		_, err = run(ctx, f, "docker", "exec", "-i", n, "ctr", "-n", "k8s.io", "images", "import", "--no-unpack", "-")
		f.Close()
		if err != nil {
			return fmt.Errorf("load %s into %s: %w", archive, n, err)
		}
	}
	return nil
}
