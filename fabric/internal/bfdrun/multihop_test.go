package bfdrun

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Two Services on loopback addresses run a multi-hop session (UDP 4784) with
// each other: it comes Up, is listed as multi-hop, and Mute, SetAdminDown and
// Remove, which name only the addresses, find it.
func TestMultihopSession(t *testing.T) {
	if testing.Short() {
		t.Skip("binds UDP 4784 on 127.0.0.71 and 127.0.0.72")
	}
	a, b := netip.MustParseAddr("127.0.0.71"), netip.MustParseAddr("127.0.0.72")
	p := topology.BFDProfile{ReceiveInterval: 50, TransmitInterval: 50, DetectMultiplier: 3, Multihop: true, MinimumTTL: 250}
	sa, sb := New(slog.New(slog.DiscardHandler), nil), New(slog.New(slog.DiscardHandler), nil)
	defer sa.Close()
	defer sb.Close()
	changes, stop := sa.Changes()
	defer stop()
	if err := sa.Add(a, b, p); err != nil {
		t.Fatal(err)
	}
	if err := sb.Add(b, a, p); err != nil {
		t.Fatal(err)
	}
	waitState := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-changes:
				if c.Peer == b && c.New == want {
					return
				}
			case <-deadline:
				t.Fatalf("session to %v never %s: %+v", b, want, sa.Sessions())
			}
		}
	}
	waitState("Up")
	s := sa.Sessions()
	if len(s) != 1 || !s[0].Multihop || s[0].State != "Up" || s[0].Local != a || s[0].Peer != b {
		t.Fatalf("sessions %+v, want one multi-hop session Up", s)
	}
	// Muted, a stops sending: b's session expires, a hears b's Down.
	if err := sa.Mute(a, b, true); err != nil {
		t.Fatal(err)
	}
	waitState("Down")
	if err := sa.Mute(a, b, false); err != nil {
		t.Fatal(err)
	}
	waitState("Up")
	if err := sa.SetAdminDown(a, b, true); err != nil {
		t.Fatal(err)
	}
	if s := sa.Sessions(); len(s) != 1 || s[0].State != "AdminDown" || !s[0].Multihop {
		t.Fatalf("after SetAdminDown: %+v", s)
	}
	if err := sa.SetAdminDown(a, b, false); err != nil {
		t.Fatal(err)
	}
	waitState("Up")
	if err := sa.Remove(a, b); err != nil {
		t.Fatal(err)
	}
	if s := sa.Sessions(); len(s) != 0 {
		t.Fatalf("after Remove: %+v", s)
	}
}
