package kindbackend

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// drainGrace is the grace period a drain gives the pods it evicts
// (`kubectl drain --grace-period`): the echo pods' own is an hour (a
// preStop sleep that models a draining workload), which would hold a
// drain for that long.
const drainGrace = "1"

// drainTimeout bounds a drain (`kubectl drain --timeout`).
const drainTimeout = 2 * time.Minute

// pauseNode freezes a whole node container (`docker pause`: the cgroup
// freezer stops every process of the node — kubelet, containerd, the
// speaker, the pods — while its kernel still answers, ARP and ICMP
// included). It returns when the freezer reports the node frozen.
func (b *Backend) pauseNode(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	if _, err := command(ctx, nil, "docker", "pause", k); err != nil {
		return at, fmt.Errorf("kind: freeze %s: %w", node, err)
	}
	b.mu.Lock()
	b.paused[node] = true
	b.mu.Unlock()
	return at, nil
}

// unpauseNode thaws a node pauseNode froze.
func (b *Backend) unpauseNode(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	if _, err := command(ctx, nil, "docker", "unpause", k); err != nil {
		return at, fmt.Errorf("kind: thaw %s: %w", node, err)
	}
	b.mu.Lock()
	delete(b.paused, node)
	b.mu.Unlock()
	return at, nil
}

// drain drains a node as `kubectl drain` does: cordon, evict every pod
// that no DaemonSet owns (through the eviction API, so PodDisruptionBudgets
// hold), wait until they are gone. The speakers, a DaemonSet, stay. The
// returned time is when the drain started: the endpoints leave while
// kubectl still waits for the pods.
func (b *Backend) drain(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	b.mu.Lock()
	b.cordoned[node] = true
	b.mu.Unlock()
	at := time.Now()
	out, err := kubectl(ctx, b.cluster.Kubectl, b.kind.Kubeconfig(), "drain", k, "--ignore-daemonsets", "--delete-emptydir-data",
		"--force", "--grace-period="+drainGrace, "--timeout="+drainTimeout.String())
	if err != nil {
		return at, fmt.Errorf("kind: drain %s: %w: %s", node, err, out)
	}
	b.log.Info("drained", "node", node, "kubectl", out)
	return at, nil
}

// uncordon makes a drained node schedulable again. What the drain evicted
// does not come back: a workload's controller may place new pods there.
func (b *Backend) uncordon(ctx context.Context, node string) (time.Time, error) {
	k, err := b.kindNode(node)
	if err != nil {
		return time.Time{}, err
	}
	at := time.Now()
	if out, err := kubectl(ctx, b.cluster.Kubectl, b.kind.Kubeconfig(), "uncordon", k); err != nil {
		return at, fmt.Errorf("kind: uncordon %s: %w: %s", node, err, out)
	}
	b.mu.Lock()
	delete(b.cordoned, node)
	b.mu.Unlock()
	return at, nil
}

// undoNodeFaults thaws the nodes a freeze-node left frozen and uncordons
// the nodes a drain-node left cordoned, so the next scenario file finds
// the cluster whole whatever happened to this one.
func (b *Backend) undoNodeFaults(ctx context.Context) error {
	b.mu.Lock()
	paused, cordoned := b.paused, b.cordoned
	b.paused, b.cordoned = map[string]bool{}, map[string]bool{}
	b.mu.Unlock()
	var errs []error
	for n := range paused {
		if _, err := b.unpauseNode(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	for n := range cordoned {
		if _, err := b.uncordon(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
