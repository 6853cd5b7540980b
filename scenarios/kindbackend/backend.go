package kindbackend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/kindconfig"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Backend is one topology on the suite's kind cluster: a fresh fabric whose
// ToRs sit on the cluster's Docker network, and the cluster's first workers
// as the topology's nodes.
type Backend struct {
	cluster *Cluster
	kind    *kindconfig.Cluster
	kube    kubernetes.Interface
	fabric  *fabric.Fabric
	topo    topology.Topology
	log     *slog.Logger

	// kindName maps a topology node to its kind node, topoName back.
	kindName, topoName map[string]string

	mu sync.Mutex
	// frozen and cut are the nodes a fault left frozen or cut (with the
	// links cut), undone by Down so the next scenario file finds the
	// cluster whole.
	frozen map[string]bool
	cut    map[string][]string
	// paused and cordoned are the nodes a freeze-node left paused and a
	// drain-node left cordoned, undone by Down too.
	paused, cordoned map[string]bool
	// routes are a cut node's routes (ip route show), restored by linkUp.
	routes map[string]string
	// restarts are the speakers' container restart counts at Up (CheckAlive).
	restarts map[string]int32

	// l2net is the Docker network of the topology's L2 segment ("" without
	// one), l2watch the L2 client's neighbour watch.
	l2net   string
	l2watch *netns.NeighWatch
}

var _ backend.Backend = (*Backend)(nil)
var _ backend.EventReader = (*Backend)(nil)
var _ backend.EndpointsTimer = (*Backend)(nil)

// Up brings topo up on the suite's cluster (creating the cluster at the
// first call): the topology's nodes become the first workers at their
// Docker addresses, the speakers run on those only, and a new fabric joins
// the cluster's network. binDir holds the fabric binary. On error whatever
// it made is removed.
func Up(ctx context.Context, c *Cluster, topo topology.Topology, binDir string) (_ *Backend, err error) {
	topo.SetDefaults()
	if err := c.Ensure(ctx, len(topo.Nodes)); err != nil {
		return nil, err
	}
	k := c.Kind()
	b := &Backend{cluster: c, kind: k, kube: k.Client(), log: c.Log, kindName: map[string]string{}, topoName: map[string]string{},
		frozen: map[string]bool{}, cut: map[string][]string{}, paused: map[string]bool{}, cordoned: map[string]bool{}, routes: map[string]string{}, restarts: map[string]int32{}}
	defer func() {
		if err != nil {
			if derr := b.Down(); derr != nil {
				b.log.Warn("tearing down after a failed start", "err", derr)
			}
		}
	}()
	if b.topo, err = b.placeNodes(ctx, topo, c.workerList()); err != nil {
		return nil, err
	}
	var nodes []string
	for _, n := range b.topo.Nodes {
		nodes = append(nodes, b.kindName[n.Name])
	}
	if err := SetSpeakerNodes(ctx, b.kube, nodes); err != nil {
		return nil, err
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	l2Bridge := ""
	if b.topo.L2 != nil {
		if l2Bridge, err = b.upL2(ctx); err != nil {
			return nil, err
		}
	}
	b.fabric, err = fabric.Up(ctx, b.topo, fabric.Options{
		Instance:        "k" + hex.EncodeToString(id),
		Binary:          filepath.Join(binDir, "fabric"),
		Logger:          b.log,
		ExitWithCaller:  true,
		ExternalSegment: kindconfig.BridgeName(k.Network()),
		ExternalNodes:   true,
		ExternalL2:      l2Bridge,
	})
	if err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	if b.topo.L2 != nil {
		if b.l2watch, err = b.fabric.WatchL2Neighbors(); err != nil {
			return nil, err
		}
	}
	b.topo = b.fabric.Topology()
	for _, n := range nodes {
		if err := b.nodeRoutes(ctx, n, true); err != nil {
			return nil, err
		}
	}
	if err := WaitDeployed(ctx, b.kube, nodes, 3*time.Minute); err != nil {
		return nil, err
	}
	if err := b.recordRestarts(ctx); err != nil {
		return nil, err
	}
	b.log.Info("kind backend up", "fabric", b.fabric.Instance(), "nodes", b.kindName)
	return b, nil
}

// placeNodes maps the topology's nodes to workers and gives them the
// workers' Docker addresses. The cluster network is IPv4 only, so IPv6 is
// dropped from the topology.
func (b *Backend) placeNodes(ctx context.Context, topo topology.Topology, workers []string) (topology.Topology, error) {
	plan, err := kindconfig.ParseNetworkPlan("", "", "")
	if err != nil {
		return topo, err
	}
	if topo.Segment.Masked() != plan.Subnet {
		return topo, fmt.Errorf("kind: the topology's segment %s is not the cluster network %s", topo.Segment, plan.Subnet)
	}
	if len(topo.Nodes) > len(workers) {
		return topo, fmt.Errorf("kind: %d nodes, %d workers", len(topo.Nodes), len(workers))
	}
	topo.Nodes = append([]topology.Node(nil), topo.Nodes...)
	topo.ToRs = append([]topology.ToR(nil), topo.ToRs...)
	topo.Clients = append([]topology.Client(nil), topo.Clients...)
	topo.Segment6 = netip.Prefix{}
	for i := range topo.ToRs {
		if plan.IPRange.Contains(topo.ToRs[i].Address) || topo.ToRs[i].Address == plan.Gateway {
			return topo, fmt.Errorf("kind: ToR %s's address %s is Docker's (range %s, gateway %s)", topo.ToRs[i].Name,
				topo.ToRs[i].Address, plan.IPRange, plan.Gateway)
		}
		topo.ToRs[i].Address6 = netip.Addr{}
	}
	for i := range topo.Clients {
		topo.Clients[i].Link6 = netip.Prefix{}
	}
	for i := range topo.Nodes {
		w := workers[i]
		if topo.L2 != nil {
			// The node keeps its lab address on the L2 segment.
			topo.Nodes[i].L2Address = topo.L2Addr(topo.Nodes[i])
		}
		a, err := containerAddr(ctx, w, b.kind.Network())
		if err != nil {
			return topo, err
		}
		topo.Nodes[i].Address, topo.Nodes[i].Address6 = a, netip.Addr{}
		b.kindName[topo.Nodes[i].Name], b.topoName[w] = w, topo.Nodes[i].Name
	}
	if err := topo.Validate(); err != nil {
		return topo, fmt.Errorf("kind: %w", err)
	}
	return topo, nil
}

// nodeRoutes adds (or removes) a node's routes back to the clients via
// their ToRs, inside the node container, and forgets the ToRs' old MAC
// addresses (a fresh fabric's ToRs have new ones).
func (b *Backend) nodeRoutes(ctx context.Context, node string, add bool) error {
	var errs []error
	for _, r := range b.fabric.ClientRoutes() {
		if add {
			if _, err := nodeExec(ctx, node, "ip", "route", "replace", r.Dst.String(), "via", r.Via.String()); err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", node, err))
			}
		} else {
			_, _ = nodeExec(ctx, node, "ip", "route", "del", r.Dst.String())
		}
	}
	for _, t := range b.topo.ToRs {
		_, _ = nodeExec(ctx, node, "ip", "neigh", "flush", "to", t.Address.String())
	}
	return errors.Join(errs...)
}

// Down deletes what the scenario file made in the cluster (metallb.io
// objects, LoadBalancer Services, echo pods), undoes faults left in place,
// removes the nodes' client routes and takes the fabric down. The cluster
// stays for the next file.
func (b *Backend) Down() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A paused node first: nothing else can be undone on it.
	errs := []error{b.undoNodeFaults(ctx)}
	b.mu.Lock()
	frozen, cut := b.frozen, b.cut
	b.frozen, b.cut = map[string]bool{}, map[string][]string{}
	b.mu.Unlock()
	for n := range frozen {
		if _, err := b.thaw(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	for n := range cut {
		if _, err := b.linkUp(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if b.kube != nil {
		errs = append(errs, b.deleteObjects(ctx))
	}
	if b.fabric != nil {
		for _, n := range b.kindName {
			errs = append(errs, b.nodeRoutes(ctx, n, false))
		}
		errs = append(errs, b.fabric.Down(ctx))
		b.fabric = nil
	}
	errs = append(errs, b.downL2(ctx))
	return errors.Join(errs...)
}

// metallbKinds are the metallb.io resources a scenario may create.
const metallbKinds = "ipaddresspools.metallb.io,bgppeers.metallb.io,bgpadvertisements.metallb.io,bfdprofiles.metallb.io," +
	"l2advertisements.metallb.io,communities.metallb.io,servicebgpstatuses.metallb.io,servicel2statuses.metallb.io"

func (b *Backend) deleteObjects(ctx context.Context) error {
	var errs []error
	if out, err := b.kubectlWrite(ctx, "delete", metallbKinds, "--all", "-A", "--wait=false"); err != nil {
		errs = append(errs, fmt.Errorf("%w: %s", err, out))
	}
	svcs, err := b.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if err := b.kube.CoreV1().Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	pods, err := b.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: echoLabel})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range pods.Items {
		errs = append(errs, b.forceDelete(ctx, p.Namespace, p.Name))
	}
	return errors.Join(errs...)
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "kind" }

// Root implements backend.Backend.
func (b *Backend) Root() string { return b.cluster.Root }

// Topology implements backend.Backend: the scenario's topology with the
// nodes at their Docker addresses.
func (b *Backend) Topology() backend.Topology { return backend.Topology{Topology: b.topo} }

// Fabric is the scenario file's fabric.
func (b *Backend) Fabric() *fabric.Fabric { return b.fabric }

// KindNode names the kind node of a topology node ("" if none).
func (b *Backend) KindNode(node string) string { return b.kindName[node] }

func (b *Backend) kindNode(node string) (string, error) {
	if k := b.kindName[node]; k != "" {
		return k, nil
	}
	return "", fmt.Errorf("kind: no node %q in the topology", node)
}

// webhookRetry bounds how long a kubectl write is retried while the
// apiserver cannot reach the admission or conversion webhooks (failure
// policy Fail): after a controller restart until a replica is Ready and the
// webhook Service's endpoints are programmed.
const webhookRetry = time.Minute

// webhookDown says whether kubectl's output is a refusal because a webhook
// could not be called, not a verdict on the objects.
func webhookDown(out string) bool {
	return strings.Contains(out, "failed calling webhook") || strings.Contains(out, "conversion webhook for")
}

// kubectlWrite runs a kubectl write, retrying for up to webhookRetry while
// the webhooks cannot be called; any other failure returns at once.
func (b *Backend) kubectlWrite(ctx context.Context, args ...string) (string, error) {
	deadline := time.Now().Add(webhookRetry)
	for {
		out, err := kubectl(ctx, b.cluster.Kubectl, b.kind.Kubeconfig(), args...)
		if err == nil || !webhookDown(out) || time.Now().After(deadline) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Apply implements backend.Backend (kubectl apply, in order), retrying
// while the webhooks cannot be called (kubectlWrite).
func (b *Backend) Apply(ctx context.Context, files ...string) error {
	for _, f := range files {
		if out, err := b.kubectlWrite(ctx, "apply", "-f", f); err != nil {
			return fmt.Errorf("kubectl apply -f %s: %w: %s", f, err, out)
		}
	}
	return nil
}

// TryApply implements backend.Backend.
func (b *Backend) TryApply(ctx context.Context, file string) (string, bool, error) {
	out, err := command(ctx, nil, b.cluster.Kubectl, "--kubeconfig", b.kind.Kubeconfig(), "apply", "-f", file)
	out = strings.TrimSpace(out)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, false, nil
	}
	return out, err == nil, err
}

// Delete implements backend.Backend.
func (b *Backend) Delete(ctx context.Context, files ...string) error {
	for _, f := range files {
		if out, err := b.kubectlWrite(ctx, "delete", "--ignore-not-found", "--wait=false", "-f", f); err != nil {
			return fmt.Errorf("kubectl delete -f %s: %w\n%s", f, err, out)
		}
	}
	return b.dropOrphanedEchoPods(ctx)
}

// dropOrphanedEchoPods deletes the echo pods of Services that are gone (or
// going): they stood for those Services' endpoints, and would otherwise stay
// endpoints of any other Service with the same selector.
func (b *Backend) dropOrphanedEchoPods(ctx context.Context) error {
	pods, err := b.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: echoLabel})
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pods.Items {
		svc, err := b.kube.CoreV1().Services(p.Namespace).Get(ctx, p.Labels[echoLabel], metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) || err == nil && svc.DeletionTimestamp != nil:
			errs = append(errs, b.forceDelete(ctx, p.Namespace, p.Name))
		case err != nil:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CreateService implements backend.Backend.
func (b *Backend) CreateService(ctx context.Context, namespace, name string) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyLocal,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := b.kube.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", namespace, name, err)
	}
	return nil
}

// DeleteService implements backend.Backend: the Service and its echo pods.
func (b *Backend) DeleteService(ctx context.Context, namespace, name string) error {
	if _, err := b.setEndpoints(ctx, namespace, name, nil); err != nil {
		return err
	}
	err := b.kube.CoreV1().Services(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// LabelNode implements backend.Backend.
func (b *Backend) LabelNode(ctx context.Context, node string, set map[string]string, remove []string) error {
	k, err := b.kindNode(node)
	if err != nil {
		return err
	}
	api := b.kube.CoreV1().Nodes()
	n, err := api.Get(ctx, k, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for key, v := range set {
		n.Labels[key] = v
	}
	for _, key := range remove {
		delete(n.Labels, key)
	}
	if _, err := api.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("labelling Node %s (%s): %w", node, k, err)
	}
	return nil
}

// ExternalIP implements backend.Backend.
func (b *Backend) ExternalIP(ctx context.Context, namespace, service, family string, timeout time.Duration) (netip.Addr, error) {
	return backend.KubeExternalIP(ctx, b.kube, namespace, service, family, timeout, nil)
}

// ServiceEvents implements backend.EventReader.
func (b *Backend) ServiceEvents(ctx context.Context, namespace, name string) ([]backend.ServiceEvent, error) {
	return backend.KubeServiceEvents(ctx, b.kube, namespace, name)
}

// Route implements backend.Backend.
func (b *Backend) Route(ctx context.Context, tor string, prefix netip.Prefix) (backend.Set, error) {
	set, err := b.fabric.Route(ctx, tor, prefix)
	if errors.Is(err, fabric.ErrNoRoute) {
		return rib.ECMPSet{Prefix: prefix}, nil
	}
	return set, err
}

// KernelRoute implements backend.Backend.
func (b *Backend) KernelRoute(_ context.Context, tor string, prefix netip.Prefix) ([]netip.Addr, error) {
	return b.fabric.KernelRoute(tor, prefix)
}

// History implements backend.Backend.
func (b *Backend) History(ctx context.Context, tor string) ([]backend.Change, error) {
	return b.fabric.History(ctx, tor, 0)
}

// Events implements backend.Backend.
func (b *Backend) Events(ctx context.Context, tor string) ([]backend.Event, error) {
	return b.fabric.Events(ctx, tor, 0)
}

// WaitBFD implements backend.Backend.
func (b *Backend) WaitBFD(ctx context.Context, tor, node, state string) error {
	return b.fabric.WaitForBFD(ctx, tor, node, state)
}

// WaitRoute implements backend.Backend.
func (b *Backend) WaitRoute(ctx context.Context, tor string, prefix netip.Prefix, want []netip.Addr) error {
	if _, err := b.fabric.WaitForRoute(ctx, tor, prefix, want); err != nil {
		return err
	}
	if err := b.fabric.WaitForKernelRoute(ctx, tor, prefix, want); err != nil {
		return fmt.Errorf("kernel FIB: %w", err)
	}
	return nil
}
