package fabric_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "fabric integration tests need root (network namespaces)")
		return 1
	}
	dir, err := os.MkdirTemp("", "fabric-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary, err = fabric.BuildBinary(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func instanceName(_ *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// up starts a fabric that is removed when the test ends, whatever happens.
func up(t *testing.T, topo topology.Topology) *fabric.Fabric {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := fabric.Up(ctx, topo, fabric.Options{Instance: instanceName(t), Binary: binary, ExitWithCaller: true})
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st := f.State()
		if t.Failed() {
			for _, p := range append(procs(st.Routers), procs(st.Announcers)...) {
				if b, err := os.ReadFile(p.Log); err == nil {
					if len(b) > 8000 {
						b = b[len(b)-8000:]
					}
					t.Logf("--- %s (tail) ---\n%s", p.Log, b)
				}
			}
		}
		if err := f.Down(ctx); err != nil {
			t.Errorf("down: %v", err)
		}
		for _, ns := range st.Namespaces() {
			if netns.Exists(ns) {
				t.Errorf("namespace %s left behind", ns)
			}
		}
		if _, err := os.Stat(f.Dir()); err == nil {
			t.Errorf("state dir %s left behind", f.Dir())
		}
	})
	return f
}

func procs(m map[string]fabric.Proc) []fabric.Proc {
	var out []fabric.Proc
	for _, p := range m {
		out = append(out, p)
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}
