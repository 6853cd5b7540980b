package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ecmplb/ecmplb/internal/proc"
)

func startProcess(dir, name string, stderr *os.File, bin string, args ...string) (*proc.Process, error) {
	return proc.Start(name, proc.Options{LogPath: filepath.Join(dir, name+".log"), Output: stderr}, bin, args...)
}

// restartProcess starts a program again, appending to its log.
func restartProcess(dir, name string, stderr *os.File, bin string, args ...string) (*proc.Process, error) {
	return proc.Start(name, proc.Options{LogPath: filepath.Join(dir, name+".log"), Output: stderr, Append: true}, bin, args...)
}

func waitHTTP(ctx context.Context, url string, p *proc.Process) error {
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
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("exited: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
