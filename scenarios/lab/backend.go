package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Backend is the lab as a scenarios backend.
type Backend struct{ *Lab }

var _ backend.Backend = Backend{}

// AsBackend returns the lab as a scenarios backend.
func (l *Lab) AsBackend() Backend { return Backend{l} }

// Name implements backend.Backend.
func (b Backend) Name() string { return "lab" }

// Root implements backend.Backend.
func (b Backend) Root() string { return b.Lab.Root }

// Topology implements backend.Backend.
func (b Backend) Topology() backend.Topology { return backend.Topology{Topology: b.Fabric.Topology()} }

// Delete implements backend.Backend.
func (b Backend) Delete(ctx context.Context, files ...string) error {
	return b.DeleteFiles(ctx, files...)
}

// CreateService implements backend.Backend.
func (b Backend) CreateService(ctx context.Context, namespace, name string) error {
	return b.CreateLBService(ctx, namespace, name)
}

// ExternalIP implements backend.Backend.
func (b Backend) ExternalIP(ctx context.Context, namespace, service, family string, timeout time.Duration) (netip.Addr, error) {
	return b.WaitExternalIP(ctx, namespace, service, family, timeout)
}

// Running implements backend.Backend.
func (b Backend) Running(node string) bool { return b.SpeakerPID(node) != 0 }

// Logs implements backend.Backend.
func (b Backend) Logs(component string, lines int) string {
	if component == "controller" {
		if b.controller != nil {
			return b.controller.Tail(lines)
		}
		return ""
	}
	if node, ok := strings.CutPrefix(component, "speaker-"); ok {
		return b.SpeakerLogTail(node, lines)
	}
	return ""
}

// Route implements backend.Backend.
func (b Backend) Route(ctx context.Context, tor string, prefix netip.Prefix) (backend.Set, error) {
	set, err := b.Fabric.Route(ctx, tor, prefix)
	if errors.Is(err, fabric.ErrNoRoute) {
		return rib.ECMPSet{Prefix: prefix}, nil
	}
	return set, err
}

// KernelRoute implements backend.Backend.
func (b Backend) KernelRoute(_ context.Context, tor string, prefix netip.Prefix) ([]netip.Addr, error) {
	return b.Fabric.KernelRoute(tor, prefix)
}

// History implements backend.Backend.
func (b Backend) History(ctx context.Context, tor string) ([]backend.Change, error) {
	return b.Fabric.History(ctx, tor, 0)
}

// Events implements backend.Backend.
func (b Backend) Events(ctx context.Context, tor string) ([]backend.Event, error) {
	return b.Fabric.Events(ctx, tor, 0)
}

// WaitBFD implements backend.Backend.
func (b Backend) WaitBFD(ctx context.Context, tor, node, state string) error {
	return b.Fabric.WaitForBFD(ctx, tor, node, state)
}

// WaitRoute implements backend.Backend.
func (b Backend) WaitRoute(ctx context.Context, tor string, prefix netip.Prefix, want []netip.Addr) error {
	if _, err := b.Fabric.WaitForRoute(ctx, tor, prefix, want); err != nil {
		return err
	}
	if err := b.Fabric.WaitForKernelRoute(ctx, tor, prefix, want); err != nil {
		return fmt.Errorf("kernel FIB: %w", err)
	}
	return nil
}

// Flows implements backend.Backend.
func (b Backend) Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error) {
	undo, err := b.prepareDataPlaneProto(proto, dst)
	if err != nil {
		return nil, err
	}
	defer undo()
	switch proto {
	case "udp", "":
		return b.Fabric.SendFlows(ctx, b.clientName(), dst, n, 2*time.Second)
	case "tcp":
		return b.tcpFlows(ctx, dst, n, 2*time.Second)
	}
	return nil, fmt.Errorf("flows: protocol %q is neither udp nor tcp", proto)
}

// LabelNode implements backend.Backend.
func (b Backend) LabelNode(ctx context.Context, node string, set map[string]string, remove []string) error {
	api := b.Kube.CoreV1().Nodes()
	n, err := api.Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for k, v := range set {
		n.Labels[k] = v
	}
	for _, k := range remove {
		delete(n.Labels, k)
	}
	if _, err := api.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("labelling Node %s: %w", node, err)
	}
	return nil
}

// SetEndpointStates implements backend.Backend.
func (b Backend) SetEndpointStates(ctx context.Context, namespace, service string, eps ...backend.Endpoint) error {
	return b.writeSlice(ctx, namespace, service, eps)
}

// Inject implements backend.Backend.
func (b Backend) Inject(ctx context.Context, f backend.Fault) (time.Time, error) {
	switch f.Kind {
	case backend.FaultSpeakerFreeze:
		return b.FreezeSpeaker(ctx, f.Target)
	case backend.FaultSpeakerRestart:
		return b.RestartSpeaker(f.Target)
	case backend.FaultControllerRestart:
		return b.RestartController()
	case backend.FaultNodeFreeze:
		return b.FreezeNode(ctx, f.Target)
	case backend.FaultNodeDrain:
		return b.DrainNode(ctx, f.Target)
	case backend.FaultAPIServerDown:
		at := time.Now()
		b.Env.StopAPIServer()
		return at, nil
	}
	flt, err := fabricFault(f)
	if err != nil {
		return time.Time{}, err
	}
	n := len(b.Fabric.FaultLog())
	start := time.Now()
	if err := b.Fabric.Fault(ctx, flt); err != nil {
		return start, err
	}
	// The fabric records when the fault took effect (e.g. when a flapping
	// ToR went silent).
	if log := b.Fabric.FaultLog(); len(log) > n {
		return log[n].At, nil
	}
	return start, nil
}

// Repair implements backend.Backend.
func (b Backend) Repair(ctx context.Context, f backend.Fault) (time.Time, error) {
	switch f.Kind {
	case backend.FaultSpeakerFreeze:
		return b.ThawSpeaker(f.Target)
	case backend.FaultNodeFreeze:
		return b.ThawNode(ctx, f.Target)
	case backend.FaultNodeDrain:
		return b.UncordonNode(ctx, f.Target)
	case backend.FaultSpeakerRestart, backend.FaultControllerRestart:
		return time.Now(), nil
	case backend.FaultAPIServerDown:
		at := time.Now()
		if b.Env.APIServerPID() != 0 {
			return at, nil
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return at, b.Env.StartAPIServer(sctx)
	}
	flt, err := fabricFault(f)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	return at, b.Fabric.Repair(ctx, flt)
}

func fabricFault(f backend.Fault) (fabric.Fault, error) {
	if f.Kind == backend.FaultLinkCut {
		return fabric.Fault{Kind: fabric.FaultNodeDown, Target: f.Target, Link: f.Link}, nil
	}
	if flt, ok := backend.FabricFault(f); ok {
		return flt, nil
	}
	return fabric.Fault{}, fmt.Errorf("lab: unknown fault kind %q", f.Kind)
}

// RestartController stops the controller gracefully and starts it again; it
// returns when the new process was started (and waits, before returning, for
// its webhooks to serve: the lab has one replica, so admission is down until
// then, as in a cluster whose every replica restarts).
func (l *Lab) RestartController() (time.Time, error) {
	if l.controller != nil {
		l.controller.Stop(5 * time.Second)
	}
	at := time.Now()
	if err := l.startController(); err != nil {
		return at, err
	}
	return at, l.waitControllerReady(context.Background())
}

// installWebhooks gives the lab's apiserver the chart's admission and
// conversion webhooks (deploy/ecmplb.yaml: rules, failure policy Fail, the
// empty certificate Secret), pointed at the controller on loopback, which
// manages their certificate as it does in a cluster.
func (l *Lab) installWebhooks(ctx context.Context) error {
	var err error
	if l.webhookPort, err = testenv.FreeLoopbackPort(); err != nil {
		return err
	}
	if l.healthPort, err = testenv.FreeLoopbackPort(); err != nil {
		return err
	}
	_, err = testenv.InstallWebhooksFromFile(ctx, l.Env.Config, filepath.Join(l.Root, "deploy", "ecmplb.yaml"),
		fmt.Sprintf("https://localhost:%d", l.webhookPort))
	return err
}

func (l *Lab) startController() error {
	p, err := proc.Start("controller", proc.Options{LogPath: filepath.Join(l.Dir, "controller.log")}, filepath.Join(l.binDir, "ecmplb-controller"),
		"--kubeconfig", l.Env.Kubeconfig, "--metrics-addr", "0",
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", l.healthPort),
		"--webhook-addr", fmt.Sprintf("127.0.0.1:%d", l.webhookPort),
		"--webhook-extra-dns-names", "localhost",
		"--webhook-cert-dir", filepath.Join(l.Dir, "webhook-certs"),
		"--leader-elect=false", "--log-level", "info")
	if err != nil {
		return err
	}
	l.controller = p
	return nil
}

// controllerReadyTimeout bounds the wait for a started controller's
// /readyz: its webhook certificate served and its CA in the webhook
// configuration and the CRD.
const controllerReadyTimeout = time.Minute

// waitControllerReady polls the controller's /readyz until it answers 200.
func (l *Lab) waitControllerReady(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", l.healthPort)
	ctx, cancel := context.WithTimeout(ctx, controllerReadyTimeout)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-l.controller.Done():
			return fmt.Errorf("controller exited before it was ready: %s", l.controller.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("controller not ready within %v: %w", controllerReadyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeSlice writes the Service's lab EndpointSlice with the given endpoints.
func (l *Lab) writeSlice(ctx context.Context, namespace, service string, endpoints []backend.Endpoint) error {
	svc, err := l.Kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		port := p.TargetPort.IntVal
		if port == 0 {
			port = p.Port
		}
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(port), Protocol: ptr.To(p.Protocol)})
	}
	var eps []discoveryv1.Endpoint
	for i, e := range endpoints {
		eps = append(eps, discoveryv1.Endpoint{
			// Pod addresses are data only: nothing routes them.
			Addresses: []string{fmt.Sprintf("10.244.%d.%d", i/250, i%250+2)},
			NodeName:  ptr.To(e.Node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.Ready), Serving: ptr.To(e.Serving),
				Terminating: ptr.To(e.Terminating)},
		})
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      service + "-lab",
			Namespace: namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: service,
				discoveryv1.LabelManagedBy:   "lab.ecmplb.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       ports,
	}
	api := l.Kube.DiscoveryV1().EndpointSlices(namespace)
	old, err := api.Get(ctx, slice.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = api.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("EndpointSlice %s/%s: %w", namespace, slice.Name, err)
	}
	return nil
}
