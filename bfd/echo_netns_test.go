package bfd_test

import (
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// enableEcho sets what the echo function needs in a namespace: forwarding
// (to return the peer's echo packets) and accept_local (to accept our own
// packets coming back with our address as source).
func enableEcho(t *testing.T, ns *netns.NS, ifName string) {
	t.Helper()
	for _, kv := range []string{
		"net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.accept_local=1",
		"net.ipv4.conf." + ifName + ".accept_local=1",
		"net.ipv4.conf.all.rp_filter=0",
		"net.ipv4.conf." + ifName + ".rp_filter=0",
		"net.ipv4.conf.all.send_redirects=0",
		"net.ipv4.conf." + ifName + ".send_redirects=0",
	} {
		if _, err := ns.Run("sysctl", "-qw", kv); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEchoInNamespaces runs the echo function over a real veth: echo packets
// go out through the peer's MAC and come back through its forwarding plane.
// Turning that forwarding off (while the peer's BFD keeps running) takes the
// session Down with "Echo Function Failed" within the echo detection time.
func TestEchoInNamespaces(t *testing.T) {
	p := newNetnsPair(t, "e")
	enableEcho(t, p.A, p.Link.IfA)
	enableEcho(t, p.B, p.Link.IfB)
	a := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()))
	b := bfd.NewManager(bfd.WithNetNSPath(p.B.Path()))
	t.Cleanup(func() { a.Close(); b.Close() })
	ev, cancel := a.Subscribe()
	defer cancel()
	prof := profile(300, 300, 3)
	prof.EchoMode, prof.EchoInterval = true, 50
	if err := a.AddPeer(nsKeyAB, prof); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(nsKeyBA, prof); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, nsKeyAB, bfd.StateUp, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := a.Sessions()[0]
		if s.EchoActive && s.EchoPacketsIn > 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo not working: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	drainNoChange(t, ev)
	if _, err := p.B.Run("sysctl", "-qw", "net.ipv4.ip_forward=0"); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	down := waitEvent(t, ev, nsKeyAB, bfd.StateDown, 5*time.Second)
	if down.Diag != bfd.DiagEchoFailed {
		t.Fatalf("diag %q, want %q", down.Diag, bfd.DiagEchoFailed)
	}
	t.Logf("echo failure detected %v after forwarding stopped (echo detection 150ms, control 900ms)", down.At.Sub(stopped))
}

// drainNoChange fails if the subscription holds a transition away from Up
// (a false echo failure before the fault is injected).
func drainNoChange(t *testing.T, ch <-chan bfd.StateChange) {
	t.Helper()
	for {
		select {
		case ev := <-ch:
			if ev.Old == bfd.StateUp {
				t.Fatalf("session went down before the fault: %+v", ev)
			}
		default:
			return
		}
	}
}
