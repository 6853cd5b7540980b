package kindbackend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Endpoints are echo pods (the ecmplb/echo image), one per Service and
// node, named <service>-<node>. Each pod's readiness probe and way of
// terminating express an endpoint's conditions the way a real workload
// does:
//
//	ready                      probe on the echo port, not deleted
//	not ready                  probe on a port nothing serves
//	serving, terminating       deleted with a grace period; a preStop sleep
//	                           keeps it running (and its probe passing)
//	terminating, not serving   the not-ready pod, deleted the same way
//
// A pod that must go is deleted with grace period 0, so its endpoint goes
// at once.

// echoLabel marks echo pods; its value is the Service's name.
const echoLabel = "ecmplb.io/echo"

// EchoImage is the echo server's image as `make images` tags it.
const EchoImage = "ecmplb/echo:dev"

// deadPort is where a not-ready pod's readiness probe looks: nothing
// listens there.
const deadPort = 1

// terminationGrace is how long a terminating echo pod stays (its preStop
// sleep); scenarios end well before.
const terminationGrace = 3600

type podState struct{ terminating, probeOK bool }

func (s podState) String() string {
	switch {
	case s.terminating && s.probeOK:
		return "serving, terminating"
	case s.terminating:
		return "terminating, not serving"
	case s.probeOK:
		return "ready"
	}
	return "not ready"
}

// wanted turns an endpoint's conditions into a pod state; conditions no pod
// can show (ready and terminating; serving but neither ready nor
// terminating) are an error.
func wanted(e backend.Endpoint) (podState, error) {
	switch {
	case e.Ready && e.Terminating:
		return podState{}, fmt.Errorf("endpoint on %s: ready and terminating (a terminating pod is never ready)", e.Node)
	case e.Ready:
		return podState{probeOK: true}, nil
	case e.Terminating:
		return podState{terminating: true, probeOK: e.Serving}, nil
	case e.Serving:
		return podState{}, fmt.Errorf("endpoint on %s: serving but neither ready nor terminating", e.Node)
	}
	return podState{}, nil
}

func stateOf(p *corev1.Pod) podState {
	ok := true
	for _, c := range p.Spec.Containers {
		if pr := c.ReadinessProbe; pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Port.IntVal == deadPort {
			ok = false
		}
	}
	return podState{terminating: p.DeletionTimestamp != nil, probeOK: ok}
}

// SetEndpoints implements backend.Backend.
func (b *Backend) SetEndpoints(ctx context.Context, namespace, service string, nodes ...string) error {
	eps := make([]backend.Endpoint, len(nodes))
	for i, n := range nodes {
		eps[i] = backend.Endpoint{Node: n, Ready: true, Serving: true}
	}
	_, err := b.setEndpoints(ctx, namespace, service, eps)
	return err
}

// SetEndpointStates implements backend.Backend.
func (b *Backend) SetEndpointStates(ctx context.Context, namespace, service string, eps ...backend.Endpoint) error {
	_, err := b.setEndpoints(ctx, namespace, service, eps)
	return err
}

// SetEndpointStatesAt implements backend.EndpointsTimer: on kind, setting
// endpoints includes starting and stopping pods, so a timed expectation
// starts when the EndpointSlices changed — the last time they were seen
// not yet as wanted (polled every 100 ms), so the figure errs long, never
// short.
func (b *Backend) SetEndpointStatesAt(ctx context.Context, namespace, service string, eps ...backend.Endpoint) (time.Time, error) {
	return b.setEndpoints(ctx, namespace, service, eps)
}

func (b *Backend) setEndpoints(ctx context.Context, namespace, service string, eps []backend.Endpoint) (time.Time, error) {
	start := time.Now()
	want := map[string]podState{} // by kind node
	wantEP := map[string]backend.Endpoint{}
	for _, e := range eps {
		k, err := b.kindNode(e.Node)
		if err != nil {
			return start, err
		}
		s, err := wanted(e)
		if err != nil {
			return start, fmt.Errorf("kind: %w", err)
		}
		want[k] = s
		wantEP[k] = backend.Endpoint{Node: k, Ready: e.Ready, Serving: e.Ready || e.Serving, Terminating: e.Terminating}
	}
	pods := b.kube.CoreV1().Pods(namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: echoLabel + "=" + service})
	if err != nil {
		return start, err
	}
	have := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		s, ok := want[p.Spec.NodeName]
		switch {
		case ok && stateOf(p) == s:
			have[p.Spec.NodeName] = p
		case ok && s.terminating && !stateOf(p).terminating && stateOf(p).probeOK == s.probeOK:
			// The real thing: the running pod is deleted and drains.
			if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				return start, fmt.Errorf("delete pod %s: %w", p.Name, err)
			}
			have[p.Spec.NodeName] = p
		default:
			if err := b.forceDelete(ctx, namespace, p.Name); err != nil {
				return start, err
			}
		}
	}
	if len(want) > len(have) {
		svc, err := b.kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
		if err != nil {
			return start, fmt.Errorf("endpoints of %s/%s: %w", namespace, service, err)
		}
		for node, s := range want {
			if have[node] != nil {
				continue
			}
			p, err := echoPod(svc, b.topoName[node], node, s.probeOK)
			if err != nil {
				return start, err
			}
			if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
				return start, fmt.Errorf("create pod %s: %w", p.Name, err)
			}
			if s.terminating {
				// Started first, so it has something to drain.
				if err := b.waitPod(ctx, namespace, p.Name, s.probeOK); err != nil {
					return start, err
				}
				if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
					return start, fmt.Errorf("delete pod %s: %w", p.Name, err)
				}
			}
		}
	}
	return b.waitSlices(ctx, namespace, service, wantEP, start)
}

// echoPod is the echo pod of svc on a node: HTTP (answering with the pod
// and node names) on the first TCP port's target port, a TCP echo on the
// second's.
func echoPod(svc *corev1.Service, topoNode, node string, probeOK bool) (*corev1.Pod, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("Service %s/%s has no selector: no pod can be its endpoint", svc.Namespace, svc.Name)
	}
	var ports []int32
	for _, p := range svc.Spec.Ports {
		if p.Protocol != corev1.ProtocolTCP && p.Protocol != "" {
			continue
		}
		port := p.Port
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal != 0 {
			port = p.TargetPort.IntVal
		} else if p.TargetPort.Type == intstr.String && p.TargetPort.StrVal != "" {
			return nil, fmt.Errorf("Service %s/%s: named target port %q", svc.Namespace, svc.Name, p.TargetPort.StrVal)
		}
		ports = append(ports, port)
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("Service %s/%s has no TCP port for the echo server", svc.Namespace, svc.Name)
	}
	args := []string{"--http-addr=:" + strconv.Itoa(int(ports[0])), "--tcp-addr="}
	if len(ports) > 1 {
		args[1] += ":" + strconv.Itoa(int(ports[1]))
	}
	probePort := ports[0]
	if !probeOK {
		probePort = deadPort
	}
	labels := maps.Clone(svc.Spec.Selector)
	labels[echoLabel] = svc.Name
	env := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-" + topoNode, Namespace: svc.Namespace, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](terminationGrace),
			SecurityContext: &corev1.PodSecurityContext{
				// The Service's ports may be below 1024.
				Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}},
			},
			Containers: []corev1.Container{{
				Name:            "echo",
				Image:           EchoImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
				Env:             []corev1.EnvVar{env("POD_NAME", "metadata.name"), env("NODE_NAME", "spec.nodeName")},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(probePort)}},
					PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1,
				},
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: terminationGrace}}},
			}},
		},
	}, nil
}

// waitPod waits until a pod's container runs and its Ready condition is
// ready.
func (b *Backend) waitPod(ctx context.Context, namespace, name string, ready bool) error {
	return poll(ctx, 100*time.Millisecond, 2*time.Minute, func() error {
		p, err := b.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		running := len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
		if !running || podReady(p) != ready {
			return fmt.Errorf("pod %s: phase %s, running %v, ready %v (want %v)", name, p.Status.Phase, running, podReady(p), ready)
		}
		return nil
	})
}

// waitSlices waits until the Service's EndpointSlices hold exactly the
// wanted endpoints (by kind node) with their conditions. Only the Service's
// own echo pods count: pods of another Service with the same selector are
// endpoints of both, as in any cluster.
// It returns the last time they were seen otherwise (start when they
// already were).
func (b *Backend) waitSlices(ctx context.Context, namespace, service string, want map[string]backend.Endpoint, start time.Time) (time.Time, error) {
	changed := start
	own := map[string]bool{}
	for topoNode := range b.kindName {
		own[service+"-"+topoNode] = true
	}
	err := poll(ctx, 100*time.Millisecond, 2*time.Minute, func() error {
		at := time.Now()
		slices, err := b.kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return err
		}
		got := map[string]backend.Endpoint{}
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef == nil || e.TargetRef.Kind != "Pod" || !own[e.TargetRef.Name] {
					continue
				}
				n := ptr.Deref(e.NodeName, "")
				got[n] = backend.Endpoint{Node: n, Ready: ptr.Deref(e.Conditions.Ready, false),
					Serving: ptr.Deref(e.Conditions.Serving, false), Terminating: ptr.Deref(e.Conditions.Terminating, false)}
			}
		}
		if !maps.Equal(got, want) {
			changed = at
			return fmt.Errorf("EndpointSlices of %s/%s: %s, want %s", namespace, service, describe(got), describe(want))
		}
		return nil
	})
	return changed, err
}

func describe(m map[string]backend.Endpoint) string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(m)) {
		e := m[n]
		out = append(out, fmt.Sprintf("%s(ready=%v serving=%v terminating=%v)", n, e.Ready, e.Serving, e.Terminating))
	}
	return "[" + strings.Join(out, " ") + "]"
}

// forceDelete deletes a pod with grace period 0: its endpoint goes at once.
func (b *Backend) forceDelete(ctx context.Context, namespace, name string) error {
	err := b.kube.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

// poll calls f every interval until it returns nil, ctx ends or timeout
// passes; the error then carries f's last.
func poll(ctx context.Context, interval, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		last := f()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
