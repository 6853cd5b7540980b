package kindbackend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// ErrNotOnKind is returned for what a kind cluster cannot do (wrapped with
// the reason).
var ErrNotOnKind = errors.New("not on kind")

// speakerComm is the speaker's process name (/proc/PID/comm).
const speakerComm = "ecmplb-speaker"

// nodeInterface is a kind node's link to the cluster network.
const nodeInterface = "eth0"

// speakerPID finds the host PID of the speaker process in a node container:
// the process named ecmplb-speaker in the node's network namespace (the
// speaker uses the host network of its node). 0 when none runs.
func speakerPID(ctx context.Context, node string) (int, error) {
	cpid, err := containerPID(ctx, node)
	if err != nil {
		return 0, err
	}
	pids, err := proc.InNetNSOf(cpid, speakerComm)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	return pids[0], nil
}

// Inject implements backend.Backend. freeze-speaker stops the speaker
// process in the node container with SIGSTOP; cut-link takes the node
// container's eth0 down (the node is then cut from the ToRs and from the
// apiserver alike, as a pulled cable would); restart-speaker deletes the
// node's speaker pod and returns when the DaemonSet's new pod runs;
// restart-controller deletes the controller pods and returns when a new one
// runs; freeze-node pauses the node container (nodefaults.go); drain-node
// drains the node with kubectl. apiserver-down is not offered on kind. The ToR and BFD faults are
// the fabric's, as in the lab.
func (b *Backend) Inject(ctx context.Context, f backend.Fault) (time.Time, error) {
	if f.Link != "" && f.Kind != backend.FaultLinkCut {
		return time.Time{}, fmt.Errorf("kind: %s limited to the %s link: %w (only cut-link takes a link)", f.Kind, f.Link, ErrNotOnKind)
	}
	switch f.Kind {
	case backend.FaultSpeakerFreeze:
		return b.freeze(ctx, f.Target)
	case backend.FaultLinkCut:
		links, err := b.nodeLinks(f.Link)
		if err != nil {
			return time.Time{}, err
		}
		return b.linkDown(ctx, f.Target, links)
	case backend.FaultSpeakerRestart:
		return b.restartSpeaker(ctx, f.Target)
	case backend.FaultControllerRestart:
		return b.restartController(ctx)
	case backend.FaultNodeFreeze:
		return b.pauseNode(ctx, f.Target)
	case backend.FaultNodeDrain:
		return b.drain(ctx, f.Target)
	case backend.FaultAPIServerDown:
		return time.Time{}, fmt.Errorf("kind: %s: %w (the apiserver is a static pod the kubelet restarts)", f.Kind, ErrNotOnKind)
	}
	flt, err := fabricFault(f)
	if err != nil {
		return time.Time{}, err
	}
	n := len(b.fabric.FaultLog())
	start := time.Now()
	if err := b.fabric.Fault(ctx, flt); err != nil {
		return start, err
	}
	if log := b.fabric.FaultLog(); len(log) > n {
		return log[n].At, nil
	}
	return start, nil
}

// Repair implements backend.Backend.
func (b *Backend) Repair(ctx context.Context, f backend.Fault) (time.Time, error) {
	switch f.Kind {
	case backend.FaultSpeakerFreeze:
		return b.thaw(ctx, f.Target)
	case backend.FaultLinkCut:
		return b.linkUp(ctx, f.Target)
	case backend.FaultNodeFreeze:
		return b.unpauseNode(ctx, f.Target)
	case backend.FaultNodeDrain:
		return b.uncordon(ctx, f.Target)
	case backend.FaultSpeakerRestart, backend.FaultControllerRestart:
		return time.Now(), nil
	case backend.FaultAPIServerDown:
		return time.Now(), nil // never injected: nothing to repair
	}
	flt, err := fabricFault(f)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	return at, b.fabric.Repair(ctx, flt)
}

func fabricFault(f backend.Fault) (fabric.Fault, error) {
	if flt, ok := backend.FabricFault(f); ok {
		return flt, nil
	}
	return fabric.Fault{}, fmt.Errorf("kind: unknown fault kind %q", f.Kind)
}

func (b *Backend) signalSpeaker(ctx context.Context, node string, sig syscall.Signal) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	pid, err := speakerPID(ctx, k)
	if err != nil {
		return time.Time{}, err
	}
	if pid == 0 {
		return time.Time{}, fmt.Errorf("kind: no speaker process on %s (%s)", node, k)
	}
	at := time.Now()
	if err := syscall.Kill(pid, sig); err != nil {
		return at, fmt.Errorf("kind: speaker on %s (pid %d): %s: %w", node, pid, sig, err)
	}
	return at, nil
}

func (b *Backend) freeze(ctx context.Context, node string) (time.Time, error) {
	at, err := b.signalSpeaker(ctx, node, syscall.SIGSTOP)
	if err == nil {
		b.mu.Lock()
		b.frozen[node] = true
		b.mu.Unlock()
	}
	return at, err
}

func (b *Backend) thaw(ctx context.Context, node string) (time.Time, error) {
	at, err := b.signalSpeaker(ctx, node, syscall.SIGCONT)
	b.mu.Lock()
	delete(b.frozen, node)
	b.mu.Unlock()
	return at, err
}

// nodeNetExec runs a command in a node container's network namespace from
// the host (nsenter), which works while the node is cut off.
func nodeNetExec(ctx context.Context, node string, args ...string) error {
	_, err := nodeNetOutput(ctx, node, args...)
	return err
}

// nodeNetOutput is nodeNetExec returning the command's output.
func nodeNetOutput(ctx context.Context, node string, args ...string) (string, error) {
	pid, err := containerPID(ctx, node)
	if err != nil {
		return "", err
	}
	return command(ctx, nil, "nsenter", append([]string{"-t", strconv.Itoa(pid), "-n"}, args...)...)
}

// nodeLinks are the node interfaces a cut-link limited to link takes down:
// the cluster network's (segment), the L2 segment's (l2), or both ("").
func (b *Backend) nodeLinks(link string) ([]string, error) {
	switch link {
	case "":
		if b.topo.L2 != nil {
			return []string{nodeInterface, l2Interface}, nil
		}
		return []string{nodeInterface}, nil
	case backend.LinkSegment:
		return []string{nodeInterface}, nil
	case backend.LinkL2:
		if b.topo.L2 == nil {
			return nil, fmt.Errorf("kind: cut-link link %q: the topology has no l2 segment", link)
		}
		return []string{l2Interface}, nil
	}
	return nil, fmt.Errorf("kind: cut-link link %q: not %q or %q", link, backend.LinkSegment, backend.LinkL2)
}

// linkDown takes a node's links down. The kernel drops every route through
// a link that goes down (the default route too, which the node's processes
// need to reach ClusterIPs such as the apiserver's); they are saved first
// and restored by linkUp.
func (b *Backend) linkDown(ctx context.Context, node string, links []string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	routes, err := nodeNetOutput(ctx, k, "ip", "-4", "route", "show", "table", "main")
	if err != nil {
		return time.Time{}, fmt.Errorf("kind: cut %s: %w", node, err)
	}
	b.mu.Lock()
	b.cut[node] = links
	b.routes[node] = routes
	b.mu.Unlock()
	at := time.Now()
	for _, l := range links {
		if err := nodeNetExec(ctx, k, "ip", "link", "set", l, "down"); err != nil {
			return at, fmt.Errorf("kind: cut %s: %w", node, err)
		}
	}
	return at, nil
}

// linkUp brings a cut node's link up and restores the routes it had.
func (b *Backend) linkUp(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	b.mu.Lock()
	links := b.cut[node]
	b.mu.Unlock()
	if len(links) == 0 {
		links = []string{nodeInterface}
	}
	at := time.Now()
	for _, l := range links {
		if err := nodeNetExec(ctx, k, "ip", "link", "set", l, "up"); err != nil {
			return at, fmt.Errorf("kind: repair %s: %w", node, err)
		}
	}
	b.mu.Lock()
	routes := b.routes[node]
	delete(b.cut, node)
	delete(b.routes, node)
	b.mu.Unlock()
	var errs []error
	for _, r := range strings.Split(routes, "\n") {
		if f := strings.Fields(r); len(f) > 0 {
			if err := nodeNetExec(ctx, k, append([]string{"ip", "route", "replace"}, f...)...); err != nil {
				errs = append(errs, fmt.Errorf("kind: repair %s: %w", node, err))
			}
		}
	}
	return at, errors.Join(errs...)
}

func (b *Backend) restartSpeaker(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	pods := b.kube.CoreV1().Pods(Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: speakerSelector, FieldSelector: "spec.nodeName=" + k})
	if err != nil {
		return time.Time{}, err
	}
	old := map[string]bool{}
	for _, p := range list.Items {
		old[string(p.UID)] = true
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return time.Time{}, fmt.Errorf("kind: delete speaker pod %s: %w", p.Name, err)
		}
	}
	return b.waitNewPod(ctx, speakerSelector, "spec.nodeName="+k, old)
}

func (b *Backend) restartController(ctx context.Context) (time.Time, error) {
	pods := b.kube.CoreV1().Pods(Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
	if err != nil {
		return time.Time{}, err
	}
	old := map[string]bool{}
	for _, p := range list.Items {
		old[string(p.UID)] = true
		if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			return time.Time{}, fmt.Errorf("kind: delete controller pod %s: %w", p.Name, err)
		}
	}
	return b.waitNewPod(ctx, controllerSelector, "", old)
}

// waitNewPod waits for a pod (not one of old) whose container runs, and
// returns when it was seen running.
func (b *Backend) waitNewPod(ctx context.Context, selector, fields string, old map[string]bool) (time.Time, error) {
	var at time.Time
	err := poll(ctx, 50*time.Millisecond, 2*time.Minute, func() error {
		list, err := b.kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector, FieldSelector: fields})
		if err != nil {
			return err
		}
		for _, p := range list.Items {
			if old[string(p.UID)] || p.DeletionTimestamp != nil {
				continue
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running != nil {
					at = time.Now()
					return nil
				}
			}
		}
		return fmt.Errorf("no new pod %s %s runs", selector, fields)
	})
	return at, err
}
