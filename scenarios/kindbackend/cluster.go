package kindbackend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/kindconfig"
)

// MinWorkers is the number of workers a cluster gets at least: the
// reference topology's three nodes.
const MinWorkers = 3

// LogLevelEnv names the variable that sets the installed controller's and
// speakers' log level (the chart's logLevel: debug, info, warn, error);
// unset: the chart's default.
const LogLevelEnv = "ECMPLB_KIND_LOG_LEVEL"

// Cluster is the kind cluster a suite shares between its scenario files:
// created at the first Ensure, with ecmplb installed, and deleted by
// Delete.
type Cluster struct {
	// Root is the repository root.
	Root string
	// Kubectl is the kubectl binary (default "kubectl").
	Kubectl string
	// Log receives progress messages.
	Log *slog.Logger

	mu      sync.Mutex
	kind    *kindconfig.Cluster
	workers []string
	created bool
}

// Kind is the kind cluster (nil before Ensure).
func (c *Cluster) Kind() *kindconfig.Cluster {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kind
}

// Ensure creates the cluster with at least nodes workers and installs
// ecmplb on the first nodes of them, unless that was done before; a cluster
// made for fewer workers is an error (the suite creates one cluster).
func (c *Cluster) Ensure(ctx context.Context, nodes int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.created {
		if nodes > len(c.workers) {
			return fmt.Errorf("kind: the topology has %d nodes, the suite's cluster %d workers", nodes, len(c.workers))
		}
		return nil
	}
	if c.kind != nil {
		return fmt.Errorf("kind: an earlier cluster creation failed")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Kubectl == "" {
		c.Kubectl = "kubectl"
	}
	k, err := kindconfig.New(kindconfig.Options{Workers: max(nodes, MinWorkers)}, c.Log)
	if err != nil {
		return err
	}
	c.kind = k
	start := time.Now()
	if err := k.Create(ctx); err != nil {
		return err
	}
	if err := k.WaitNodesReady(ctx, 3*time.Minute); err != nil {
		return err
	}
	if err := k.WaitPodsReady(ctx, "kube-system", 3*time.Minute); err != nil {
		return err
	}
	names, err := k.Nodes()
	if err != nil {
		return err
	}
	c.workers = Workers(k.Name(), names)
	c.Log.Info("kind cluster ready", "workers", c.workers, "took", time.Since(start).Round(time.Second))
	start = time.Now()
	if err := Install(ctx, k, InstallOptions{Root: c.Root, SpeakerNodes: c.workers[:nodes], Kubectl: c.Kubectl,
		LogLevel: os.Getenv(LogLevelEnv)}); err != nil {
		return err
	}
	c.Log.Info("ecmplb installed", "took", time.Since(start).Round(time.Second))
	c.created = true
	return nil
}

// Workers returns the worker nodes of cluster name among names, in kind's
// order: <name>-worker, <name>-worker2, ...
func Workers(name string, names []string) []string {
	type w struct {
		name string
		n    int
	}
	var ws []w
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, name+"-worker")
		if !ok {
			continue
		}
		i := 1
		if rest != "" {
			v, err := strconv.Atoi(rest)
			if err != nil {
				continue
			}
			i = v
		}
		ws = append(ws, w{n, i})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].n < ws[j].n })
	out := make([]string, len(ws))
	for i, x := range ws {
		out[i] = x.name
	}
	return out
}

// workerList is the cluster's workers in order.
func (c *Cluster) workerList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.workers)
}

// Delete deletes the cluster (its nodes, network and files); a cluster never
// created is no error.
func (c *Cluster) Delete() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kind == nil {
		return nil
	}
	err := c.kind.Delete()
	c.kind, c.created, c.workers = nil, false, nil
	return err
}

// command runs a command and returns its stdout; the error carries stderr.
func command(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String() + errb.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// nodeExec runs a command inside a node container.
func nodeExec(ctx context.Context, node string, args ...string) (string, error) {
	return command(ctx, nil, "docker", append([]string{"exec", node}, args...)...)
}

// containerAddr is a container's address on a Docker network.
func containerAddr(ctx context.Context, container, network string) (netip.Addr, error) {
	s, err := command(ctx, nil, "docker", "inspect", "--format",
		fmt.Sprintf(`{{ (index .NetworkSettings.Networks %q).IPAddress }}`, network), container)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("container %s on %s: address %q: %w", container, network, s, err)
	}
	return a, nil
}

// containerPID is the host PID of a container's init process.
func containerPID(ctx context.Context, container string) (int, error) {
	s, err := command(ctx, nil, "docker", "inspect", "--format", "{{.State.Pid}}", container)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("container %s: pid %q", container, s)
	}
	return pid, nil
}
