package kindconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// Labels of the Docker networks createNetwork makes. The creator's pid,
// its start time and its pid namespace say whether the run that made a
// network still exists (see judge).
const (
	ownerLabel    = "io.ecmplb.owner"
	ownerValue    = "kindconfig"
	clusterLabel  = "io.ecmplb.cluster"
	pidLabel      = "io.ecmplb.pid"
	pidStartLabel = "io.ecmplb.pidstart"
	pidNSLabel    = "io.ecmplb.pidns"
)

// creator is the process that creates a network and the cluster on it.
type creator struct {
	Cluster string
	PID     int
	Start   uint64 // clock ticks since boot, /proc/PID/stat field 22
	PIDNS   uint64 // inode of its pid namespace
}

// thisProcess is the calling process as the creator of cluster.
func thisProcess(cluster string) (creator, error) {
	pid := os.Getpid()
	st, err := proc.ReadStat(pid)
	if err != nil {
		return creator{}, fmt.Errorf("start time of this process: %w", err)
	}
	if st.StartTime == 0 {
		return creator{}, fmt.Errorf("start time of this process: not in /proc/%d/stat", pid)
	}
	ns, err := proc.PIDNSInode(pid)
	if err != nil {
		return creator{}, fmt.Errorf("pid namespace of this process: %w", err)
	}
	return creator{Cluster: cluster, PID: pid, Start: st.StartTime, PIDNS: ns}, nil
}

// labelArgs are the `docker network create` flags that record c.
func (c creator) labelArgs() []string {
	return []string{
		"--label", ownerLabel + "=" + ownerValue,
		"--label", clusterLabel + "=" + c.Cluster,
		"--label", pidLabel + "=" + strconv.Itoa(c.PID),
		"--label", pidStartLabel + "=" + strconv.FormatUint(c.Start, 10),
		"--label", pidNSLabel + "=" + strconv.FormatUint(c.PIDNS, 10),
	}
}

// verdict is what RemoveStale does with a network.
type verdict int

const (
	keepAlive      verdict = iota // its creator still runs
	keepUnrecorded                // no (readable) creator record: an older kindconfig, or not ours
	keepElsewhere                 // created in another pid namespace: its pid means nothing here
	keepUnknown                   // /proc cannot tell
	removeDead                    // its creator has ended
)

func (v verdict) String() string {
	switch v {
	case keepAlive:
		return "alive"
	case keepUnrecorded:
		return "unrecorded"
	case keepElsewhere:
		return "elsewhere"
	case keepUnknown:
		return "unknown"
	case removeDead:
		return "dead"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// judge decides about the network called network from its labels, this
// process's pid namespace and read (proc.ReadStat outside tests), and says
// why. Only a creator known to have ended gives removeDead: the pid is gone,
// or it now belongs to a process with another start time (reused). A
// process that has exited but is not yet reaped still counts as alive.
func judge(network string, labels map[string]string, pidNS uint64, read func(pid int) (proc.Stat, error)) (verdict, string) {
	if labels[ownerLabel] != ownerValue {
		return keepUnrecorded, "no " + ownerLabel + "=" + ownerValue + " label"
	}
	pidS, hasPID := labels[pidLabel]
	startS, hasStart := labels[pidStartLabel]
	if !hasPID && !hasStart {
		return keepUnrecorded, "no creator recorded (made by an older kindconfig)"
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 {
		return keepUnrecorded, fmt.Sprintf("unreadable %s label %q", pidLabel, pidS)
	}
	start, err := strconv.ParseUint(startS, 10, 64)
	if err != nil || start == 0 {
		return keepUnrecorded, fmt.Sprintf("unreadable %s label %q", pidStartLabel, startS)
	}
	if c := labels[clusterLabel]; c != network {
		return keepUnrecorded, fmt.Sprintf("%s label %q is not the network's name", clusterLabel, c)
	}
	if ns, ok := labels[pidNSLabel]; ok && ns != strconv.FormatUint(pidNS, 10) {
		return keepElsewhere, fmt.Sprintf("created by pid %d in pid namespace %s, this process runs in %d", pid, ns, pidNS)
	}
	st, err := read(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
		return removeDead, fmt.Sprintf("creator pid %d has ended", pid)
	case err != nil:
		return keepUnknown, fmt.Sprintf("creator pid %d: %v", pid, err)
	case st.StartTime == 0:
		return keepUnknown, fmt.Sprintf("creator pid %d: no start time in /proc", pid)
	case st.StartTime != start:
		return removeDead, fmt.Sprintf("creator pid %d has ended (the pid now belongs to a process started at tick %d, not %d)", pid, st.StartTime, start)
	}
	return keepAlive, fmt.Sprintf("creator pid %d still runs", pid)
}

// staleScope is what removeStale works with.
type staleScope struct {
	read  func(pid int) (proc.Stat, error)
	pidNS uint64
	only  func(network string) bool // nil: every network of ours
}

// RemoveStale removes what runs that have ended left behind: for every
// Docker network labelled io.ecmplb.owner=kindconfig whose recorded
// creator process is gone (no such pid, or one with another start time),
// the kind cluster of that name, the network and its forwarding rule, and
// the cluster's temporary directory. It returns the networks it removed.
//
// A network whose creator still runs, was created in another pid
// namespace, or is not recorded (made before the creator was recorded) is
// left alone; the last two are logged as a warning with how to remove them.
// Nothing without the owner label is looked at.
func RemoveStale(ctx context.Context, log *slog.Logger) ([]string, error) {
	ns, err := proc.PIDNSInode(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("pid namespace of this process: %w", err)
	}
	return removeStale(ctx, log, staleScope{read: proc.ReadStat, pidNS: ns})
}

// dockerNetwork is what removeStale reads of `docker network inspect`.
type dockerNetwork struct {
	Name   string
	Labels map[string]string
}

func removeStale(ctx context.Context, log *slog.Logger, s staleScope) ([]string, error) {
	if log == nil {
		log = slog.Default()
	}
	ids, err := run(ctx, nil, "docker", "network", "ls", "-q", "--filter", "label="+ownerLabel+"="+ownerValue)
	if err != nil {
		return nil, fmt.Errorf("list leftover networks: %w", err)
	}
	var removed []string
	var errs []error
	for _, id := range strings.Fields(ids) {
		out, err := run(ctx, nil, "docker", "network", "inspect", "--format", "{{json .}}", id)
		if err != nil {
			log.Debug("leftover network vanished", "id", id, "err", err)
			continue
		}
		var n dockerNetwork
		if err := json.Unmarshal([]byte(out), &n); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
			continue
		}
		if s.only != nil && !s.only(n.Name) {
			continue
		}
		v, why := judge(n.Name, n.Labels, s.pidNS, s.read)
		switch v {
		case removeDead:
			if err := removeLeftover(ctx, log, n.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			log.Info("removed the kind cluster and docker network a run that ended left", "network", n.Name,
				"bridge", BridgeName(n.Name), "why", why)
			removed = append(removed, n.Name)
		case keepUnrecorded, keepElsewhere:
			log.Warn("left alone a docker network whose creator cannot be checked from here; once no run uses it, remove it with "+
				"`kind delete cluster --name "+n.Name+"`, `docker network rm "+n.Name+"` and "+
				"`iptables -w -D DOCKER-USER "+strings.Join(quoted(forwardRule(BridgeName(n.Name))), " ")+"` "+
				"(hack/e2e-leftovers.sh lists what is left)", "network", n.Name, "why", why)
		default:
			log.Debug("kept a docker network", "network", n.Name, "verdict", v, "why", why)
		}
	}
	return removed, errors.Join(errs...)
}

// quoted shell-quotes the arguments that hold spaces.
func quoted(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// removeLeftover deletes the kind cluster called name (its nodes), then
// the network of that name with its forwarding rule, then the cluster's
// temporary directories.
func removeLeftover(ctx context.Context, log *slog.Logger, name string) error {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "ecmplb-kind-"+name+"-*"))
	dirs = tempDirsOf(name, dirs)
	kubeconfig := ""
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "kind.kubeconfig")); err == nil {
			kubeconfig = filepath.Join(d, "kind.kubeconfig")
		}
	}
	p := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(slogLogger{log.With("leftover", name)}))
	if err := p.Delete(name, kubeconfig); err != nil {
		return fmt.Errorf("delete leftover cluster %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := removeNetwork(ctx, name); err != nil {
		return fmt.Errorf("leftover %w", err)
	}
	var errs []error
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tempDirsOf keeps the paths that are Create's temporary directories of
// cluster name (os.MkdirTemp puts digits after the pattern's '-'): not
// those of a cluster whose name merely starts with name and a '-'.
func tempDirsOf(name string, paths []string) []string {
	var out []string
	for _, p := range paths {
		rest, ok := strings.CutPrefix(filepath.Base(p), "ecmplb-kind-"+name+"-")
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" {
			continue
		}
		out = append(out, p)
	}
	return out
}
