package lab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// Memory is what the kernel reports of a process's memory and CPU.
type Memory = proc.Usage

// ReadMemory reads a process's memory and CPU from /proc.
func ReadMemory(pid int) (Memory, error) { return proc.ReadUsage(pid) }

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
