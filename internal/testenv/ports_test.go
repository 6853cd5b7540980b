package testenv

import (
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// TestFreeLoopbackPortsOutsideTheEphemeralRange: a port the kernel may hand
// to an outgoing connection between the pick and the server's listen is a
// port a server can fail to bind; none is handed out, none twice, and each
// is free.
func TestFreeLoopbackPortsOutsideTheEphemeralRange(t *testing.T) {
	lo, hi, err := proc.ReadEphemeralPorts()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 20 {
		ps, err := FreeLoopbackPorts(3)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p >= lo && p <= hi || p < 1024 || p > 65535 {
				t.Errorf("port %d: inside the ephemeral range %d-%d or not an unprivileged port", p, lo, hi)
			}
			if seen[p] {
				t.Errorf("port %d handed out twice", p)
			}
			seen[p] = true
			l, err := listenLoopback(p)
			if err != nil {
				t.Errorf("port %d: %v", p, err)
				continue
			}
			l.Close()
		}
	}
	p, err := FreeLoopbackPort()
	if err != nil || seen[p] || p >= lo && p <= hi {
		t.Errorf("FreeLoopbackPort: %d, %v", p, err)
	}
}

type fakeListener struct{ net.Listener }

func (fakeListener) Close() error { return nil }

func TestPickPorts(t *testing.T) {
	busy := errors.New("busy")
	// Only 1024..1029 and 65530..65535 lie outside this range; of them only
	// 1025 and 65534 can be bound.
	free := map[int]bool{1025: true, 65534: true}
	listen := func(p int) (net.Listener, error) {
		if !free[p] {
			return nil, busy
		}
		return fakeListener{}, nil
	}
	c := testClaims(t, filepath.Join(t.TempDir(), "ports.lock"))
	given := map[int]bool{}
	ps, err := pickPorts(2, 1030, 65529, listen, c, given)
	if err != nil {
		t.Fatal(err)
	}
	if !(ps[0] == 1025 && ps[1] == 65534 || ps[0] == 65534 && ps[1] == 1025) {
		t.Errorf("picked %v, want 1025 and 65534", ps)
	}
	// Both are given now: nothing is left.
	if ps, err := pickPorts(1, 1030, 65529, listen, c, given); err == nil {
		t.Errorf("picked %v of no free port", ps)
	}
	if ps, err := pickPorts(3, 1030, 65529, listen, testClaims(t, filepath.Join(t.TempDir(), "ports.lock")), map[int]bool{}); err == nil {
		t.Errorf("picked %v, 3 of 2 free ports", ps)
	}
}

func testClaims(t *testing.T, path string) *portClaims {
	t.Helper()
	c, err := openPortClaims(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close() })
	return c
}

// Two test processes (two openings of the claims file) never get the same
// port, though both could bind it between one's pick and its server's
// listen; a port is claimable again once its holder closed the file.
func TestPickPortsAcrossProcesses(t *testing.T) {
	listen := func(int) (net.Listener, error) { return fakeListener{}, nil } // all 12 bindable
	path := filepath.Join(t.TempDir(), "ports.lock")
	first, second := testClaims(t, path), testClaims(t, path)
	a, err := pickPorts(7, 1030, 65529, listen, first, map[int]bool{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pickPorts(5, 1030, 65529, listen, second, map[int]bool{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b {
		if slices.Contains(a, p) {
			t.Errorf("port %d handed to both: %v and %v", p, a, b)
		}
	}
	if ps, err := pickPorts(1, 1030, 65529, listen, testClaims(t, path), map[int]bool{}); err == nil {
		t.Errorf("picked %v with all 12 claimed by others", ps)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}
	if ps, err := pickPorts(7, 1030, 65529, listen, testClaims(t, path), map[int]bool{}); err != nil {
		t.Errorf("the first's 7 ports not claimable after it closed: %v, %v", ps, err)
	}
}
