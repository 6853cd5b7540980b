package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a program the lab started: the controller, or a speaker inside
// a node's network namespace.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// startProcess runs bin with args, in network namespace netns when it is not
// empty (via `ip netns exec`, which execs in place so the PID is the
// program's own). The child dies with the lab (Pdeathsig).
func startProcess(name, logDir, netns, bin string, args ...string) (*Process, error) {
	p := &Process{Name: name, LogPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if netns != "" {
		args = append([]string{"netns", "exec", netns, bin}, args...)
		bin = "ip"
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM (a graceful stop: the speaker closes its sessions with a
// NOTIFICATION) and SIGKILL after timeout.
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

// Memory is what the kernel reports of a process's memory.
type Memory struct {
	RSS, PeakRSS uint64 // bytes (VmRSS, VmHWM)
	CPU          time.Duration
}

// ReadMemory reads /proc/PID/status and /proc/PID/stat.
func ReadMemory(pid int) (Memory, error) {
	var m Memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n * 1024
		case "VmHWM":
			m.PeakRSS = n * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return m, err
	}
	// Fields after the command name (which may hold spaces, hence the last ')').
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	fs := strings.Fields(rest)
	if len(fs) > 13 {
		utime, _ := strconv.ParseUint(fs[11], 10, 64)
		stime, _ := strconv.ParseUint(fs[12], 10, 64)
		m.CPU = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	}
	return m, nil
}

// BuildBinaries compiles ecmplb-controller, ecmplb-speaker and fabric from the
// repository at root into dir.
func BuildBinaries(ctx context.Context, root, dir string) error {
	for _, b := range []struct{ name, pkg string }{
		{"ecmplb-controller", "./controller"},
		{"ecmplb-speaker", "./speaker"},
		{"fabric", "./fabric"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// tailLog returns the last lines of a log file, for error messages.
func tailLog(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
