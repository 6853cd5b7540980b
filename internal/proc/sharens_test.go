package proc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestInNetNSOfFindsProcessesByName(t *testing.T) {
	comm, err := ReadComm(os.Getpid())
	if err != nil || comm == "" {
		t.Fatalf("comm %q, %v", comm, err)
	}
	if want := filepath.Base(os.Args[0]); len(want) > 15 && comm != want[:15] || len(want) <= 15 && comm != want {
		t.Errorf("comm %q, executable %q", comm, want)
	}
	// The parent (go test) shares this process's namespace; this process
	// itself is left out.
	all, err := InNetNSOf(os.Getpid(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all, os.Getppid()) || slices.Contains(all, os.Getpid()) {
		t.Errorf("processes in this namespace %v: want the parent %d, not this process %d", all, os.Getppid(), os.Getpid())
	}
	none, err := InNetNSOf(os.Getpid(), "no-such-process")
	if err != nil || len(none) != 0 {
		t.Errorf("no-such-process: %v, %v", none, err)
	}
}
