package testenv

import (
	"errors"
	"net"
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
	given := map[int]bool{}
	ps, err := pickPorts(2, 1030, 65529, listen, given)
	if err != nil {
		t.Fatal(err)
	}
	if !(ps[0] == 1025 && ps[1] == 65534 || ps[0] == 65534 && ps[1] == 1025) {
		t.Errorf("picked %v, want 1025 and 65534", ps)
	}
	// Both are given now: nothing is left.
	if ps, err := pickPorts(1, 1030, 65529, listen, given); err == nil {
		t.Errorf("picked %v of no free port", ps)
	}
	if ps, err := pickPorts(3, 1030, 65529, listen, map[int]bool{}); err == nil {
		t.Errorf("picked %v, 3 of 2 free ports", ps)
	}
}
