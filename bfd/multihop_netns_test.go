package bfd_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/frrlab"
)

var (
	nsMHKeyAB = bfd.PeerKey{Local: nsAddrA, Peer: nsAddrB, MultiHop: true}
	nsMHKeyBA = bfd.PeerKey{Local: nsAddrB, Peer: nsAddrA, MultiHop: true}
)

// TestUDPMultiHopInNamespaces runs multi-hop sessions over real sockets:
// UDP 4784, packets under the minimum TTL dropped.
func TestUDPMultiHopInNamespaces(t *testing.T) {
	p := newNetnsPair(t, "m")
	reg := prometheus.NewRegistry()
	a := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()), bfd.WithRegisterer(reg))
	b := bfd.NewManager(bfd.WithNetNSPath(p.B.Path()))
	t.Cleanup(func() { a.Close(); b.Close() })
	evA, cancel := a.Subscribe()
	defer cancel()
	prof := profile(50, 50, 3)
	if err := a.AddPeer(nsMHKeyAB, prof); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(nsMHKeyBA, prof); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, evA, nsMHKeyAB, bfd.StateUp, 10*time.Second)
	out, err := p.A.Run("ss", "-uanH", "sport", "=", ":4784")
	if err != nil || out == "" {
		t.Fatalf("no listener on UDP 4784: %q %v", out, err)
	}

	// A packet with TTL 64 (under minimumTtl 254) is dropped.
	forgedAdminDown(t, p, sessionInfo(t, a), bfd.MultiHopControlPort, reg)
	if s := sessionInfo(t, a); s.State != bfd.StateUp {
		t.Fatalf("forged AdminDown with TTL 64 took the session down: %+v", s)
	}
	// Silence B: A goes Down on detection time.
	if err := b.Mute(nsMHKeyBA, true); err != nil {
		t.Fatal(err)
	}
	if ev := waitEvent(t, evA, nsMHKeyAB, bfd.StateDown, 5*time.Second); ev.Diag != bfd.DiagControlDetectionTimeExpired {
		t.Fatalf("diag %s", ev.Diag)
	}
}

// TestInteropFRRMultiHop runs a multi-hop session against FRR's bfdd with a
// multihop peer: both come Up, FRR sees it as multi-hop, each side detects
// the other falling silent.
func TestInteropFRRMultiHop(t *testing.T) {
	frrlab.Require(t)
	p := newNetnsPair(t, "h")
	f, err := frrlab.StartFRR(p.B,
		frrlab.Daemon{Name: "zebra", Config: "log timestamp precision 6\n"},
		frrlab.Daemon{Name: "bfdd", Config: frrlab.BFDMultiHopConfig(nsAddrA.String(), nsAddrB.String(), 300, 300, 3, 254)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := f.Vtysh("show bfd peers")
			t.Logf("bfdd:\n%s\n%s", out, f.Log("bfdd"))
		}
		if err := f.Close(); err != nil {
			t.Errorf("frr cleanup: %v", err)
		}
	})
	m := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()))
	t.Cleanup(func() { m.Close() })
	ev, cancel := m.Subscribe()
	defer cancel()
	if err := m.AddPeer(nsMHKeyAB, profile(300, 300, 3)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, nsMHKeyAB, bfd.StateUp, 15*time.Second)
	peer := frrPeer(t, f, 10*time.Second, "status up", func(p frrlab.BFDPeer) bool { return p.Status == "up" })
	if !peer.Multihop {
		t.Fatalf("FRR holds the session as single-hop: %+v", peer)
	}
	waitInfo(t, m, 5*time.Second, "300ms x 3 negotiated", func(s bfd.SessionInfo) bool {
		return s.TxInterval == 300*time.Millisecond && s.DetectionTime == 900*time.Millisecond
	})

	// bfdd frozen: we go Down on detection time; thawed, Up again.
	if err := f.Signal("bfdd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	down := waitEvent(t, ev, nsMHKeyAB, bfd.StateDown, 5*time.Second)
	if err := f.Signal("bfdd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if down.Diag != bfd.DiagControlDetectionTimeExpired {
		t.Fatalf("down diag %q", down.Diag)
	}
	waitEvent(t, ev, nsMHKeyAB, bfd.StateUp, 15*time.Second)
	// We fall silent: FRR goes down with a detection timeout.
	if err := m.Mute(nsMHKeyAB, true); err != nil {
		t.Fatal(err)
	}
	frrPeer(t, f, 10*time.Second, "down on detection time", func(p frrlab.BFDPeer) bool {
		return p.Status == "down" && p.Diagnostic == "control detection time expired"
	})
	if err := m.Mute(nsMHKeyAB, false); err != nil {
		t.Fatal(err)
	}
	frrPeer(t, f, 15*time.Second, "up again", func(p frrlab.BFDPeer) bool { return p.Status == "up" })
}
