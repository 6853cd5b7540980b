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
	// The parent (go test) is in its own namespace's list; this process is
	// never in a list (another test of the package may have moved this
	// process's main thread to another namespace, so ask the parent's).
	all, err := InNetNSOf(os.Getppid(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(all, os.Getppid()) || slices.Contains(all, os.Getpid()) {
		t.Errorf("processes in the parent's namespace %v: want the parent %d, not this process %d", all, os.Getppid(), os.Getpid())
	}
	none, err := InNetNSOf(os.Getpid(), "no-such-process")
	if err != nil || len(none) != 0 {
		t.Errorf("no-such-process: %v, %v", none, err)
	}
}
