// Package frrlab runs FRR daemons (zebra, bfdd, bgpd) in network namespaces
// (internal/netns) for BFD and BGP interop tests and benchmarks. Each instance
// runs under its own pathspace, named after its namespace, and Close stops it
// and removes its files.
package frrlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// FRRDir holds the daemons of Debian's frr package.
const FRRDir = "/usr/lib/frr"

// Installed reports whether FRR's bfdd, zebra and vtysh are present.
func Installed() bool {
	for _, p := range []string{FRRDir + "/zebra", FRRDir + "/bfdd"} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	_, err := exec.LookPath("vtysh")
	return err == nil
}

// TB is the part of testing.TB that Require uses; declared here so the
// package, which the fabric's FRR ToRs run on, does not link package testing.
type TB interface {
	Helper()
	Fatal(args ...any)
	Skip(args ...any)
}

// Require skips t when FRR is missing or the test is not root, unless
// ECMPLB_REQUIRE_FRR is set, in which case either fails the test.
func Require(t TB) {
	t.Helper()
	required := os.Getenv("ECMPLB_REQUIRE_FRR") != ""
	if os.Geteuid() != 0 {
		if required {
			t.Fatal("FRR interop needs root for network namespaces and ECMPLB_REQUIRE_FRR is set")
		}
		t.Skip("needs root for network namespaces")
	}
	if !Installed() {
		if required {
			t.Fatal("FRR is not installed (apt-get install -y frr) and ECMPLB_REQUIRE_FRR is set")
		}
		t.Skip("FRR is not installed (apt-get install -y frr)")
	}
}

// FRR is a set of FRR daemons running in one namespace under their own
// pathspace (-N), so several instances coexist on one machine.
type FRR struct {
	NS      *netns.NS
	Name    string // pathspace
	ConfDir string
	RunDir  string
	// StopTimeout bounds how long Close waits for each daemon after SIGTERM
	// before it kills it (default 5 s).
	StopTimeout time.Duration
	procs       map[string]*exec.Cmd
	order       []string
}

// Daemon is one FRR daemon to start with its configuration text.
type Daemon struct {
	Name   string // "zebra", "bfdd", "bgpd", ...
	Config string
	// Args are extra command-line arguments (e.g. bgpd's -l ADDRESS).
	Args []string
}

// StartFRR starts daemons in order (put zebra first) inside ns and waits
// until each answers on its vty socket.
func StartFRR(ns *netns.NS, daemons ...Daemon) (*FRR, error) {
	f := &FRR{NS: ns, Name: ns.Name, ConfDir: "/etc/frr/" + ns.Name, RunDir: RunDir(ns.Name), procs: map[string]*exec.Cmd{}}
	if err := f.prepare(); err != nil {
		f.Close()
		return nil, err
	}
	for _, d := range daemons {
		if err := f.start(d); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func (f *FRR) prepare() error {
	uid, gid := -1, -1
	if u, err := user.Lookup("frr"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, d := range []string{f.ConfDir, f.RunDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("frr dirs: %w", err)
		}
		if uid >= 0 {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("frr dirs: %w", err)
			}
		}
	}
	return os.WriteFile(filepath.Join(f.ConfDir, "vtysh.conf"), nil, 0o644)
}

func (f *FRR) start(d Daemon) error {
	conf := filepath.Join(f.ConfDir, d.Name+".conf")
	if err := os.WriteFile(conf, []byte(d.Config), 0o644); err != nil {
		return fmt.Errorf("%s config: %w", d.Name, err)
	}
	if u, err := user.Lookup("frr"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = os.Chown(conf, uid, gid)
	}
	logFile := filepath.Join(f.RunDir, d.Name+".log")
	args := append([]string{"netns", "exec", f.NS.Name, filepath.Join(FRRDir, d.Name),
		"-N", f.Name, "-f", conf, "-i", filepath.Join(f.RunDir, d.Name+".pid"), "--log", "file:" + logFile}, d.Args...)
	cmd := exec.Command("ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.Name, err)
	}
	f.procs[d.Name] = cmd
	f.order = append(f.order, d.Name)
	vty := filepath.Join(f.RunDir, d.Name+".vty")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(vty); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("%s did not open %s within 15s: %s", d.Name, vty, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the daemon's process id.
func (f *FRR) PID(daemon string) (int, error) {
	cmd, ok := f.procs[daemon]
	if !ok {
		return 0, fmt.Errorf("%s not started", daemon)
	}
	// "ip netns exec" execs the daemon, so the child pid is the daemon's.
	return cmd.Process.Pid, nil
}

// Signal sends sig to a daemon (e.g. SIGSTOP to freeze bfdd, SIGCONT to thaw).
func (f *FRR) Signal(daemon string, sig syscall.Signal) error {
	pid, err := f.PID(daemon)
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}

// Vtysh runs vtysh commands against this instance and returns the output.
func (f *FRR) Vtysh(cmds ...string) (string, error) {
	args := []string{"-N", f.Name}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.NS.Run("vtysh", args...)
}

// VtyshDaemon runs vtysh commands against one daemon only. Naming the daemon
// matters when another one is frozen: plain vtysh connects to every daemon
// and would hang on it.
func (f *FRR) VtyshDaemon(daemon string, cmds ...string) (string, error) {
	args := []string{"-N", f.Name, "-d", daemon}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	return f.NS.Run("vtysh", args...)
}

// KillLeftovers kills the daemons of a pathspace whose pid files remain (from
// a test process that crashed) and removes the pathspace's directories. A pid
// is signalled only while its command line is an FRR daemon of this very
// pathspace, so a reused pid (or the host's own FRR) is never touched.
func KillLeftovers(name string) {
	if name == "" || strings.ContainsAny(name, "/.") {
		return
	}
	run := RunDir(name)
	files, _ := filepath.Glob(filepath.Join(run, "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		cmdline, err := proc.ReadCmdline(pid)
		if err != nil || !IsDaemonOf(cmdline, name) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.RemoveAll(run)
	_ = os.RemoveAll("/etc/frr/" + name)
}

// PIDs returns the daemons of a pathspace by their pid files (name to pid);
// empty when the pathspace has none.
func PIDs(pathspace string) map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(RunDir(pathspace), "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
		}
	}
	return out
}

// IsDaemonOf reports whether a NUL-separated command line (/proc/PID/cmdline)
// is an FRR daemon from FRRDir started with pathspace name (-N name).
func IsDaemonOf(cmdline []byte, name string) bool {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) == 0 || filepath.Dir(args[0]) != FRRDir {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if (args[i] == "-N" || args[i] == "--pathspace") && args[i+1] == name {
			return true
		}
	}
	return false
}

// Configure applies configuration lines in "configure terminal" mode.
func (f *FRR) Configure(lines ...string) error {
	_, err := f.Vtysh(append([]string{"configure terminal"}, lines...)...)
	return err
}

// Log returns a daemon's log file.
func (f *FRR) Log(daemon string) string {
	b, _ := os.ReadFile(filepath.Join(f.RunDir, daemon+".log"))
	return string(b)
}

// Close stops the daemons (thawing them first) and removes their directories.
func (f *FRR) Close() error {
	var errs []error
	for i := len(f.order) - 1; i >= 0; i-- {
		cmd := f.procs[f.order[i]]
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		timeout := f.StopTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		select {
		case <-done:
		case <-time.After(timeout):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	errs = append(errs, os.RemoveAll(f.ConfDir), os.RemoveAll(f.RunDir))
	return errors.Join(errs...)
}

// BFDPeer is one entry of "show bfd peers json" (intervals in ms).
type BFDPeer struct {
	Multihop               bool   `json:"multihop"`
	Peer                   string `json:"peer"`
	Local                  string `json:"local"`
	ID                     uint32 `json:"id"`
	RemoteID               uint32 `json:"remote-id"`
	PassiveMode            bool   `json:"passive-mode"`
	Status                 string `json:"status"`
	Diagnostic             string `json:"diagnostic"`
	RemoteDiagnostic       string `json:"remote-diagnostic"`
	ReceiveInterval        uint32 `json:"receive-interval"`
	TransmitInterval       uint32 `json:"transmit-interval"`
	DetectMultiplier       uint32 `json:"detect-multiplier"`
	RemoteReceiveInterval  uint32 `json:"remote-receive-interval"`
	RemoteTransmitInterval uint32 `json:"remote-transmit-interval"`
	RemoteDetectMultiplier uint32 `json:"remote-detect-multiplier"`
	Uptime                 uint64 `json:"uptime"`
	Downtime               uint64 `json:"downtime"`
}

// BFDPeers returns bfdd's view of its sessions.
func (f *FRR) BFDPeers() ([]BFDPeer, error) {
	out, err := f.Vtysh("show bfd peers json")
	if err != nil {
		return nil, err
	}
	var peers []BFDPeer
	if err := json.Unmarshal([]byte(out), &peers); err != nil {
		return nil, fmt.Errorf("show bfd peers json: %w: %s", err, strings.TrimSpace(out))
	}
	return peers, nil
}

// BFDConfig renders a bfdd configuration with one single-hop peer.
func BFDConfig(peer, local string, rxMs, txMs, mult uint32, passive bool) string {
	return bfdConfig(peer, local, rxMs, txMs, mult, passive, 0)
}

// BFDMultiHopConfig is BFDConfig for a multi-hop peer (RFC 5883) that
// accepts packets with a TTL of at least minTTL.
func BFDMultiHopConfig(peer, local string, rxMs, txMs, mult, minTTL uint32) string {
	return bfdConfig(peer, local, rxMs, txMs, mult, false, minTTL)
}

// bfdConfig writes one bfdd peer; minTTL > 0 makes it multi-hop.
func bfdConfig(peer, local string, rxMs, txMs, mult uint32, passive bool, minTTL uint32) string {
	var b strings.Builder
	b.WriteString("log timestamp precision 6\ndebug bfd peer\nbfd\n")
	if minTTL > 0 {
		fmt.Fprintf(&b, " peer %s multihop local-address %s\n", peer, local)
		fmt.Fprintf(&b, "  minimum-ttl %d\n", minTTL)
	} else {
		fmt.Fprintf(&b, " peer %s local-address %s\n", peer, local)
	}
	fmt.Fprintf(&b, "  receive-interval %d\n  transmit-interval %d\n  detect-multiplier %d\n", rxMs, txMs, mult)
	if passive {
		b.WriteString("  passive-mode\n")
	}
	b.WriteString(" !\n!\n")
	return b.String()
}
