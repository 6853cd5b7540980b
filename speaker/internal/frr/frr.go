// Package frr runs FRR daemons (Debian's frr package) inside a network namespace
// for the speaker's interop tests, each instance under its own pathspace (-N) so
// several coexist on one machine.
package frr

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dir holds the FRR daemons.
const Dir = "/usr/lib/frr"

// Require skips t when FRR is missing, unless ECMPLB_REQUIRE_FRR is set (then a
// missing FRR fails the test).
func Require(t testing.TB) {
	t.Helper()
	for _, p := range []string{Dir + "/zebra", Dir + "/bgpd", Dir + "/bfdd"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("ECMPLB_REQUIRE_FRR") != "" {
				t.Fatalf("FRR is not installed (apt-get install -y frr) and ECMPLB_REQUIRE_FRR is set: %v", err)
			}
			t.Skip("FRR is not installed (apt-get install -y frr)")
		}
	}
}

// Instance is a set of FRR daemons in one namespace.
type Instance struct {
	NS, Name, ConfDir, RunDir string
	procs                     []*exec.Cmd
	names                     []string
}

// Daemon is one daemon and its configuration.
type Daemon struct{ Name, Config string }

// Start runs the daemons in order (zebra first) inside ns.
func Start(ns string, daemons ...Daemon) (*Instance, error) {
	in := &Instance{NS: ns, Name: ns, ConfDir: "/etc/frr/" + ns, RunDir: "/var/run/frr/" + ns}
	uid, gid := -1, -1
	if u, err := user.Lookup("frr"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, d := range []string{in.ConfDir, in.RunDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if uid >= 0 {
			_ = os.Chown(d, uid, gid)
		}
	}
	if err := os.WriteFile(filepath.Join(in.ConfDir, "vtysh.conf"), nil, 0o644); err != nil {
		return nil, err
	}
	for _, d := range daemons {
		conf := filepath.Join(in.ConfDir, d.Name+".conf")
		if err := os.WriteFile(conf, []byte(d.Config), 0o644); err != nil {
			in.Close()
			return nil, err
		}
		if uid >= 0 {
			_ = os.Chown(conf, uid, gid)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, filepath.Join(Dir, d.Name), "-N", in.Name, "-f", conf,
			"-i", filepath.Join(in.RunDir, d.Name+".pid"), "--log", "file:"+filepath.Join(in.RunDir, d.Name+".log"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			in.Close()
			return nil, fmt.Errorf("start %s: %w", d.Name, err)
		}
		in.procs = append(in.procs, cmd)
		in.names = append(in.names, d.Name)
		vty := filepath.Join(in.RunDir, d.Name+".vty")
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, err := os.Stat(vty); err == nil {
				break
			}
			if time.Now().After(deadline) {
				in.Close()
				return nil, fmt.Errorf("%s did not start: %s", d.Name, in.Log(d.Name))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return in, nil
}

// Signal sends sig to a daemon (SIGSTOP freezes it, SIGCONT thaws it).
func (in *Instance) Signal(daemon string, sig syscall.Signal) error {
	for i, n := range in.names {
		if n == daemon {
			return syscall.Kill(in.procs[i].Process.Pid, sig)
		}
	}
	return fmt.Errorf("%s not running", daemon)
}

// Vtysh runs show/config commands against one daemon and returns the output.
// Naming the daemon matters: vtysh otherwise connects to every daemon and hangs
// on one that is frozen.
func (in *Instance) Vtysh(daemon string, cmds ...string) (string, error) {
	args := []string{"-N", in.Name, "-d", daemon}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %s: %w: %s", strings.Join(cmds, "; "), err, out)
	}
	return string(out), nil
}

// Log returns a daemon's log.
func (in *Instance) Log(daemon string) string {
	b, _ := os.ReadFile(filepath.Join(in.RunDir, daemon+".log"))
	return string(b)
}

// Close stops the daemons and removes their directories.
func (in *Instance) Close() error {
	for i := len(in.procs) - 1; i >= 0; i-- {
		cmd := in.procs[i]
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	in.procs = nil
	return errors.Join(os.RemoveAll(in.ConfDir), os.RemoveAll(in.RunDir))
}

// KillLeftovers kills daemons of a pathspace whose pid files remain (a crashed
// test child) and removes the directories.
func KillLeftovers(name string) {
	run := "/var/run/frr/" + name
	files, _ := filepath.Glob(filepath.Join(run, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(run)
	_ = os.RemoveAll("/etc/frr/" + name)
}
