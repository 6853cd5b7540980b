package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// createNodes registers a Ready Node object per fabric node, with the node's
// segment addresses (IPv4, and IPv6 in a dual-stack topology) as its
// InternalIPs, as a kubelet would.
func (l *Lab) createNodes(ctx context.Context, topo topology.Topology) error {
	for _, n := range topo.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"kubernetes.io/hostname": n.Name,
			"kubernetes.io/os":       "linux",
		}}}
		created, err := l.Kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating Node %s: %w", n.Name, err)
		}
		addrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.Address.String()}}
		if n.Address6.IsValid() {
			addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.Address6.String()})
		}
		created.Status = corev1.NodeStatus{
			Addresses: append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name}),
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "LabNode",
					LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()},
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "LabNode",
					LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()},
			},
		}
		if _, err := l.Kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("Node %s status: %w", n.Name, err)
		}
	}
	return nil
}

// Apply runs `kubectl apply -f` on each file, in order, exactly as a user
// would, so manifests are applied unchanged.
func (l *Lab) Apply(ctx context.Context, files ...string) error {
	bins, err := testenv.FindBinaries(l.Root)
	if err != nil {
		return err
	}
	for _, f := range files {
		out, err := exec.CommandContext(ctx, bins.Kubectl, "--kubeconfig", l.Env.Kubeconfig, "apply", "-f", f).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl apply -f %s: %w\n%s", f, err, out)
		}
	}
	return nil
}

// SetEndpoints plays the part of the pods of a Service: it writes the
// Service's EndpointSlice with one ready endpoint on each named node (none:
// an empty slice). It returns when the apiserver has accepted the write.
func (l *Lab) SetEndpoints(ctx context.Context, namespace, service string, nodes ...string) error {
	sorted := append([]string(nil), nodes...)
	sort.Strings(sorted)
	eps := make([]backend.Endpoint, len(sorted))
	for i, n := range sorted {
		eps[i] = backend.Endpoint{Node: n, Ready: true, Serving: true}
	}
	return l.writeSlice(ctx, namespace, service, eps)
}

// WaitExternalIP waits until the controller has given the Service an
// address of family (backend.FamilyIPv4 or FamilyIPv6; "": its first), or
// until a process of the lab dies.
func (l *Lab) WaitExternalIP(ctx context.Context, namespace, service, family string, timeout time.Duration) (netip.Addr, error) {
	return backend.KubeExternalIP(ctx, l.Kube, namespace, service, family, timeout, l.CheckAlive)
}

// ServiceEvents lists the Events whose involved object is the Service.
func (l *Lab) ServiceEvents(ctx context.Context, namespace, name string) ([]backend.ServiceEvent, error) {
	return backend.KubeServiceEvents(ctx, l.Kube, namespace, name)
}
