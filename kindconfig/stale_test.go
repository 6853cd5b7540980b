package kindconfig

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// requireDockerEnv is set where the Docker tests must run (CI runs as root
// with Docker): a missing capability then fails the test instead of
// skipping it.
const requireDockerEnv = "ECMPLB_REQUIRE_DOCKER"

// requireDocker skips t unless it runs as root (iptables) with a reachable
// Docker daemon, or fails it when requireDockerEnv is set.
func requireDocker(t *testing.T) {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		if os.Getenv(requireDockerEnv) != "" {
			t.Fatalf("%s is set but %s", requireDockerEnv, why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		skip("needs root for iptables")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := run(ctx, nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		skip(fmt.Sprintf("needs a Docker daemon: %v", err))
	}
	if _, err := run(ctx, nil, "iptables", "-w", "-S", "DOCKER-USER"); err != nil {
		skip(fmt.Sprintf("needs Docker's DOCKER-USER chain: %v", err))
	}
}

// testNetworkName is a fresh network (and cluster) name for a test.
func testNetworkName(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "elb-t" + hex.EncodeToString(b)
}

// createTestNetwork creates a network through createNetwork, recorded as
// made by owner, on subnet (a /24 no host route or lab uses), and removes
// it when t ends, whatever happened.
func createTestNetwork(t *testing.T, subnet string, owner creator) string {
	t.Helper()
	name := owner.Cluster
	plan, err := ParseNetworkPlan(subnet, strings.TrimSuffix(subnet, "0/24")+"254", strings.TrimSuffix(subnet, "0/24")+"128/26")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeNetwork(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := createNetwork(ctx, name, plan, owner); err != nil {
		t.Fatal(err)
	}
	return name
}

// networkExists and ruleExists look at Docker and iptables directly.
func networkExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := run(context.Background(), nil, "docker", "network", "inspect", name)
	return err == nil
}

func ruleExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := run(context.Background(), nil, "iptables", append([]string{"-w", "-C", "DOCKER-USER"}, forwardRule(BridgeName(name))...)...)
	return err == nil
}

// exitedProcess runs `true` to its end and returns the pid and start time
// it had: a creator that is gone.
func exitedProcess(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Until Wait reaps it, its /proc entry stays, so the start time is
	// readable even once it has exited.
	st, err := proc.ReadStat(cmd.Process.Pid)
	if werr := cmd.Wait(); werr != nil {
		t.Fatal(werr)
	}
	if err != nil || st.StartTime == 0 {
		t.Fatalf("start time of pid %d: %d, %v", cmd.Process.Pid, st.StartTime, err)
	}
	return cmd.Process.Pid, st.StartTime
}

// testLog collects what RemoveStale logs.
func testLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// only restricts a RemoveStale run to the test's own networks: Docker here
// may hold other people's clusters, which a test must not even judge.
func only(names ...string) func(string) bool {
	return func(n string) bool { return slices.Contains(names, n) }
}

// A network recorded as made by a process that has ended is removed, with
// its forwarding rule: what a killed run leaves is gone before the next run
// checks its subnet.
func TestRemoveStaleRemovesADeadRunsNetwork(t *testing.T) {
	requireDocker(t)
	pid, start := exitedProcess(t)
	self, err := thisProcess("x")
	if err != nil {
		t.Fatal(err)
	}
	name := createTestNetwork(t, "172.30.250.0/24", creator{Cluster: testNetworkName(t), PID: pid, Start: start, PIDNS: self.PIDNS})
	if !networkExists(t, name) || !ruleExists(t, name) {
		t.Fatalf("network %s or its rule not created", name)
	}
	log, logs := testLog()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removed, err := removeStale(ctx, log, staleScope{read: proc.ReadStat, pidNS: self.PIDNS, only: only(name)})
	t.Log("log:\n" + logs.String())
	if err != nil {
		t.Errorf("removeStale: %v", err)
	}
	if !slices.Equal(removed, []string{name}) {
		t.Errorf("removed %v, want [%s]", removed, name)
	}
	if networkExists(t, name) {
		t.Errorf("network %s of dead pid %d still exists", name, pid)
	}
	if ruleExists(t, name) {
		t.Errorf("forwarding rule of %s still exists", name)
	}
	if !strings.Contains(logs.String(), name) || !strings.Contains(logs.String(), strconv.Itoa(pid)) {
		t.Errorf("log does not name the network %s and pid %d", name, pid)
	}
}

// A network whose creator (this test) still runs survives.
func TestRemoveStaleKeepsALiveRunsNetwork(t *testing.T) {
	requireDocker(t)
	owner, err := thisProcess(testNetworkName(t))
	if err != nil {
		t.Fatal(err)
	}
	name := createTestNetwork(t, "172.30.251.0/24", owner)
	log, logs := testLog()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removed, err := removeStale(ctx, log, staleScope{read: proc.ReadStat, pidNS: owner.PIDNS, only: only(name)})
	t.Log("log:\n" + logs.String())
	if err != nil || len(removed) != 0 {
		t.Errorf("removeStale = %v, %v; want nothing removed", removed, err)
	}
	if !networkExists(t, name) || !ruleExists(t, name) {
		t.Errorf("network %s (or its rule) of live pid %d removed", name, owner.PID)
	}
}

// The labels a network gets name this process, and this process is alive.
func TestThisProcessIsAlive(t *testing.T) {
	owner, err := thisProcess("elb-abc123")
	if err != nil {
		t.Fatal(err)
	}
	if owner.PID != os.Getpid() || owner.Start == 0 || owner.PIDNS == 0 {
		t.Fatalf("thisProcess = %+v", owner)
	}
	labels := map[string]string{}
	for i := 0; i+1 < len(owner.labelArgs()); i += 2 {
		k, v, _ := strings.Cut(owner.labelArgs()[i+1], "=")
		labels[k] = v
	}
	if labels[ownerLabel] != ownerValue {
		t.Errorf("labels %v lack %s=%s", labels, ownerLabel, ownerValue)
	}
	if v, why := judge("elb-abc123", labels, owner.PIDNS, proc.ReadStat); v != keepAlive {
		t.Errorf("this process judged %v (%s), want alive", v, why)
	}
}

// judge decides from the labels and what /proc says (injected) alone.
func TestJudge(t *testing.T) {
	const ns = 4026531836
	rec := func(pid, start string) map[string]string {
		return map[string]string{ownerLabel: ownerValue, clusterLabel: "elb-aaaaaa",
			pidLabel: pid, pidStartLabel: start, pidNSLabel: strconv.Itoa(ns)}
	}
	with := func(m map[string]string, k, v string) map[string]string {
		m[k] = v
		return m
	}
	without := func(m map[string]string, ks ...string) map[string]string {
		for _, k := range ks {
			delete(m, k)
		}
		return m
	}
	running := func(start uint64) func(int) (proc.Stat, error) {
		return func(pid int) (proc.Stat, error) {
			if pid != 42 {
				return proc.Stat{}, fmt.Errorf("read pid %d, want 42", pid)
			}
			return proc.Stat{State: "S", StartTime: start}, nil
		}
	}
	failing := func(err error) func(int) (proc.Stat, error) {
		return func(int) (proc.Stat, error) { return proc.Stat{}, err }
	}
	for _, tc := range []struct {
		name    string
		network string
		labels  map[string]string
		read    func(int) (proc.Stat, error)
		want    verdict
	}{
		{"alive", "elb-aaaaaa", rec("42", "1000"), running(1000), keepAlive},
		{"alive, no pid namespace recorded", "elb-aaaaaa", without(rec("42", "1000"), pidNSLabel), running(1000), keepAlive},
		{"pid gone", "elb-aaaaaa", rec("42", "1000"), failing(&fs.PathError{Op: "open", Path: "/proc/42/stat", Err: syscall.ENOENT}), removeDead},
		{"pid vanishing during the read", "elb-aaaaaa", rec("42", "1000"), failing(&fs.PathError{Op: "read", Path: "/proc/42/stat", Err: syscall.ESRCH}), removeDead},
		{"pid reused", "elb-aaaaaa", rec("42", "1000"), running(2000), removeDead},
		{"proc unreadable", "elb-aaaaaa", rec("42", "1000"), failing(errors.New("permission denied")), keepUnknown},
		{"no start time in /proc", "elb-aaaaaa", rec("42", "1000"), running(0), keepUnknown},
		{"older kindconfig: no creator", "elb-aaaaaa", without(rec("42", "1000"), pidLabel, pidStartLabel, pidNSLabel, clusterLabel), running(1000), keepUnrecorded},
		{"pid without start time", "elb-aaaaaa", without(rec("42", "1000"), pidStartLabel), running(1000), keepUnrecorded},
		{"bad pid", "elb-aaaaaa", rec("x", "1000"), running(1000), keepUnrecorded},
		{"zero start", "elb-aaaaaa", rec("42", "0"), running(1000), keepUnrecorded},
		{"no cluster", "elb-aaaaaa", without(rec("42", "1000"), clusterLabel), failing(fs.ErrNotExist), keepUnrecorded},
		{"cluster is not the network", "elb-bbbbbb", rec("42", "1000"), failing(fs.ErrNotExist), keepUnrecorded},
		{"not ours", "elb-aaaaaa", without(rec("42", "1000"), ownerLabel), failing(fs.ErrNotExist), keepUnrecorded},
		{"another pid namespace", "elb-aaaaaa", with(rec("42", "1000"), pidNSLabel, "4026532000"), failing(fs.ErrNotExist), keepElsewhere},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := judge(tc.network, tc.labels, ns, tc.read)
			if got != tc.want || why == "" {
				t.Errorf("judge = %v (%q), want %v with a reason", got, why, tc.want)
			}
		})
	}
}

// Only Create's own temporary directories of the cluster are removed with
// it, not those of a cluster whose name extends it.
func TestTempDirsOf(t *testing.T) {
	got := tempDirsOf("elb-ab", []string{
		"/tmp/ecmplb-kind-elb-ab-123456",
		"/tmp/ecmplb-kind-elb-ab-c-987",
		"/tmp/ecmplb-kind-elb-ab-",
		"/tmp/ecmplb-kind-elb-abc-1",
		"/tmp/other",
	})
	if !slices.Equal(got, []string{"/tmp/ecmplb-kind-elb-ab-123456"}) {
		t.Errorf("tempDirsOf = %v", got)
	}
}
