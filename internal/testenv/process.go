package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is a child program whose output goes to a log file and which dies
// with its parent (Pdeathsig), so a killed test leaves nothing running.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProcess(dir, name string, stderr *os.File, bin string, args ...string) (*process, error) {
	p := &process{done: make(chan struct{})}
	out := stderr
	if out == nil {
		p.logPath = filepath.Join(dir, name+".log")
		f, err := os.Create(p.logPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		out = f
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = out
	p.cmd.Stderr = out
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

// stop asks the process to end, and kills it after five seconds.
func (p *process) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

func waitHTTP(ctx context.Context, url string, p *process) error {
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("exited: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
