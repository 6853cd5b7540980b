// Package proc runs the child programs of tests, benchmarks and the lab:
// output to a log file, optionally inside a network namespace, and tied to
// the parent's life so a killed test leaves nothing running. It is also the
// project's one reader of /proc/PID (procfs.go).
package proc

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// Process is a started program.
type Process struct {
	// Name labels the process in messages.
	Name string
	// LogPath is where its stdout and stderr go ("" when they go to a
	// caller-provided file).
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	// forkTID is the thread that forked a child into a network namespace
	// (startInNetNS), released closed once that thread went back (tests).
	forkTID  int
	released chan struct{}
}

// Options tune Start.
type Options struct {
	// LogPath receives stdout and stderr (created or truncated; appended to
	// with Append).
	LogPath string
	// Append keeps what LogPath holds (a restarted program's earlier log).
	Append bool
	// Output receives stdout and stderr instead of LogPath when set.
	Output *os.File
	// NetNS runs the program in this named network namespace (`ip netns
	// exec`, which execs in place: the PID is the program's own).
	NetNS string
	// Credential, when set, runs the program as this user and groups (the
	// caller must be root). With NetNS the program then enters the namespace
	// without `ip netns exec`, which would need privileges it no longer has.
	Credential *syscall.Credential
	// AmbientCaps are capabilities (unix.CAP_*) a program started with
	// Credential keeps: raised in its ambient set, so they survive execve.
	AmbientCaps []uintptr
}

// Start runs bin with args. The child gets its own process group and is
// killed when the parent dies (Pdeathsig).
func Start(name string, opts Options, bin string, args ...string) (*Process, error) {
	p := &Process{Name: name, LogPath: opts.LogPath, done: make(chan struct{})}
	out := opts.Output
	if out == nil {
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if opts.Append {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(opts.LogPath, flags, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		out = f
	}
	direct := opts.NetNS != "" && opts.Credential != nil
	if opts.NetNS != "" && !direct {
		args = append([]string{"netns", "exec", opts.NetNS, bin}, args...)
		bin = "ip"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL,
		Credential: opts.Credential, AmbientCaps: opts.AmbientCaps}
	start := p.cmd.Start
	if direct {
		start = func() error { return startInNetNS(p, opts.NetNS, p.cmd, p.done) }
	}
	if err := start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// startInNetNS starts cmd from an OS thread that has entered the named
// network namespace: the child is forked from that thread and inherits it.
// The thread stays locked, and in the namespace, until done is closed: the
// kernel sends the child's parent-death signal when the forking thread ends.
// Then it goes back to its own namespace and to the runtime. It must not
// end: a locked goroutine that returns ends its thread, and every other
// child forked from that thread before (any Start of this process may have
// run on it) would get its parent-death signal too. Only if it cannot go
// back does it stay locked and end, so no goroutine runs in the namespace.
func startInNetNS(p *Process, name string, cmd *exec.Cmd, done <-chan struct{}) error {
	errc := make(chan error, 1)
	p.released = make(chan struct{})
	go func() {
		defer close(p.released)
		runtime.LockOSThread()
		p.forkTID = unix.Gettid()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", p.forkTID))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("this thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		f, err := os.Open(netns.Path(name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("network namespace %s: %w", name, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering network namespace %s: %w", name, err)
			return
		}
		err = cmd.Start()
		errc <- err
		if err == nil {
			<-done
		}
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM (a graceful stop) and kills the process group after
// timeout.
func (p *Process) Stop(timeout time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Tail returns the last lines of the log, for error messages.
func (p *Process) Tail(lines int) string {
	if p.LogPath == "" {
		return ""
	}
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
