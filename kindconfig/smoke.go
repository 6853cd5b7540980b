package kindconfig

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// SmokeTimings are the phases of a Smoke run.
type SmokeTimings struct {
	Create, NodesReady, SystemPodsReady, Delete time.Duration
}

// Smoke creates a cluster from o, waits until every node and every
// kube-system pod (CoreDNS over the pod network included) is Ready, writes
// `kubectl get nodes -o wide` and `kubectl get pods -A -o wide` to w, and
// deletes the cluster — also when a step fails or ctx ends (unless
// o.Retain keeps one that failed on its own).
func Smoke(ctx context.Context, o Options, log *slog.Logger, w io.Writer) (t SmokeTimings, err error) {
	c, err := New(o, log)
	if err != nil {
		return t, err
	}
	defer func() {
		if err != nil && o.Retain && ctx.Err() == nil {
			log.Warn("keeping the failed cluster", "name", c.Name(), "network", c.Network(), "kubeconfig", c.Kubeconfig())
			return
		}
		start := time.Now()
		if derr := c.Delete(); derr != nil && err == nil {
			err = derr
		}
		t.Delete = time.Since(start)
	}()
	start := time.Now()
	if err := c.Create(ctx); err != nil {
		return t, err
	}
	t.Create = time.Since(start)
	start = time.Now()
	if err := c.WaitNodesReady(ctx, 5*time.Minute); err != nil {
		return t, fmt.Errorf("nodes of %s ready: %w", c.Name(), err)
	}
	t.NodesReady = time.Since(start)
	start = time.Now()
	if err := c.WaitPodsReady(ctx, "kube-system", 5*time.Minute); err != nil {
		out, _ := c.Kubectl(ctx, "get", "pods", "-A", "-o", "wide")
		fmt.Fprintln(w, out)
		return t, fmt.Errorf("kube-system pods of %s ready: %w", c.Name(), err)
	}
	t.SystemPodsReady = time.Since(start)
	for _, args := range [][]string{{"get", "nodes", "-o", "wide"}, {"get", "pods", "-A", "-o", "wide"}} {
		out, err := c.Kubectl(ctx, args...)
		if err != nil {
			return t, err
		}
		fmt.Fprintf(w, "$ kubectl %v\n%s\n", args, out)
	}
	return t, nil
}
