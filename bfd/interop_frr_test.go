package bfd_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/frrlab"
	"github.com/ecmplb/ecmplb/internal/netns"
)

func startFRRBFD(t *testing.T, ns *netns.NS, rx, tx, mult uint32) *frrlab.FRR {
	t.Helper()
	f, err := frrlab.StartFRR(ns,
		frrlab.Daemon{Name: "zebra", Config: "log timestamp precision 6\n"},
		frrlab.Daemon{Name: "bfdd", Config: frrlab.BFDConfig(nsAddrA.String(), nsAddrB.String(), rx, tx, mult, false)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bfdd log:\n%s", f.Log("bfdd"))
		}
		if err := f.Close(); err != nil {
			t.Errorf("frr cleanup: %v", err)
		}
	})
	return f
}

// frrPeer polls bfdd until cond holds for our session, or fails after within.
func frrPeer(t *testing.T, f *frrlab.FRR, within time.Duration, what string, cond func(frrlab.BFDPeer) bool) frrlab.BFDPeer {
	t.Helper()
	deadline := time.Now().Add(within)
	var last []frrlab.BFDPeer
	for time.Now().Before(deadline) {
		peers, err := f.BFDPeers()
		if err == nil {
			last = peers
			for _, p := range peers {
				if p.Peer == nsAddrA.String() && cond(p) {
					return p
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("bfdd: %s not reached within %v; last %+v", what, within, last)
	return frrlab.BFDPeer{}
}

// waitInfo polls our session until cond holds.
func waitInfo(t *testing.T, m *bfd.Manager, within time.Duration, what string, cond func(bfd.SessionInfo) bool) bfd.SessionInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	var s bfd.SessionInfo
	for time.Now().Before(deadline) {
		s = m.Sessions()[0]
		if cond(s) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session: %s not reached within %v; last %+v", what, within, s)
	return s
}

func frrCounters(t *testing.T, f *frrlab.FRR) (up, down int) {
	t.Helper()
	out, err := f.Vtysh("show bfd peers counters")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		fmt.Sscanf(line, "Session up events: %d", &up)
		fmt.Sscanf(line, "Session down events: %d", &down)
	}
	return up, down
}

// TestInteropFRR runs our Manager against FRR's bfdd, each in its own
// namespace over a veth.
func TestInteropFRR(t *testing.T) {
	frrlab.Require(t)
	p := newNetnsPair(t, "f")
	f := startFRRBFD(t, p.B, 300, 300, 3)
	m := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()))
	t.Cleanup(func() { m.Close() })
	ev, cancel := m.Subscribe()
	defer cancel()
	if err := m.AddPeer(nsKeyAB, profile(300, 300, 3)); err != nil {
		t.Fatal(err)
	}

	// 1. The session comes Up on both sides.
	waitEvent(t, ev, nsKeyAB, bfd.StateUp, 15*time.Second)
	frrPeer(t, f, 10*time.Second, "status up", func(p frrlab.BFDPeer) bool { return p.Status == "up" })
	s := waitInfo(t, m, 5*time.Second, "300ms x 3 negotiated", func(s bfd.SessionInfo) bool {
		return s.TxInterval == 300*time.Millisecond && s.DetectionTime == 900*time.Millisecond
	})
	t.Logf("up: %+v", s)

	// 2. FRR changes its timers: it sends every 500ms and wants 600ms from us.
	if err := f.Configure("bfd", fmt.Sprintf("peer %s local-address %s", nsAddrA, nsAddrB),
		"transmit-interval 500", "receive-interval 600", "detect-multiplier 4"); err != nil {
		t.Fatal(err)
	}
	waitInfo(t, m, 10*time.Second, "FRR's new timers", func(s bfd.SessionInfo) bool {
		return s.TxInterval == 600*time.Millisecond && s.DetectionTime == 2*time.Second
	})

	// 3. We change ours: FRR sees them after our Poll/Final.
	if err := m.UpdatePeer(nsKeyAB, profile(100, 200, 5)); err != nil {
		t.Fatal(err)
	}
	frrPeer(t, f, 10*time.Second, "our new timers", func(p frrlab.BFDPeer) bool {
		return p.RemoteTransmitInterval == 100 && p.RemoteReceiveInterval == 200 && p.RemoteDetectMultiplier == 5
	})
	waitInfo(t, m, 10*time.Second, "renegotiated", func(s bfd.SessionInfo) bool {
		return s.TxInterval == 600*time.Millisecond && s.DetectionTime == 2*time.Second
	})
	if err := f.Configure("bfd", fmt.Sprintf("peer %s local-address %s", nsAddrA, nsAddrB),
		"transmit-interval 50", "receive-interval 50", "detect-multiplier 3"); err != nil {
		t.Fatal(err)
	}
	waitInfo(t, m, 10*time.Second, "fast timers", func(s bfd.SessionInfo) bool {
		return s.TxInterval == 100*time.Millisecond && s.DetectionTime == 600*time.Millisecond
	})
	// No flap on either side through all of that.
	select {
	case e := <-ev:
		t.Fatalf("state changed during renegotiation: %+v", e)
	default:
	}
	if up, down := frrCounters(t, f); up != 1 || down != 0 {
		t.Fatalf("FRR saw %d up and %d down events during renegotiation", up, down)
	}

	// 4. FRR falls silent (bfdd frozen): we go Down on detection time.
	if err := f.Signal("bfdd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	down := waitEvent(t, ev, nsKeyAB, bfd.StateDown, 5*time.Second)
	if err := f.Signal("bfdd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if down.Diag != bfd.DiagControlDetectionTimeExpired || down.Diag.String() != "Control Detection Time Expired" {
		t.Fatalf("down diag %q", down.Diag)
	}
	t.Logf("detected frozen bfdd after %v (detection time 600ms)", down.At.Sub(frozen))

	// 5. Thawed, the session comes back; removing it tells FRR AdminDown.
	waitEvent(t, ev, nsKeyAB, bfd.StateUp, 15*time.Second)
	frrPeer(t, f, 10*time.Second, "up again", func(p frrlab.BFDPeer) bool { return p.Status == "up" })
	if err := m.RemovePeer(nsKeyAB); err != nil {
		t.Fatal(err)
	}
	frrPeer(t, f, 10*time.Second, "down by AdminDown", func(p frrlab.BFDPeer) bool {
		return p.Status == "down" && p.RemoteDiagnostic == "administratively down"
	})

	// 6. Passive mode: we wait for FRR's first packet, then come Up.
	passive := profile(50, 50, 3)
	passive.PassiveMode = true
	if err := m.AddPeer(nsKeyAB, passive); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, nsKeyAB, bfd.StateUp, 15*time.Second)
	frrPeer(t, f, 10*time.Second, "up with passive peer", func(p frrlab.BFDPeer) bool { return p.Status == "up" })
}

// TestInteropFRREcho runs the echo function against FRR with echo-mode: each
// side's echo packets are returned by the other namespace's forwarding plane.
func TestInteropFRREcho(t *testing.T) {
	frrlab.Require(t)
	p := newNetnsPair(t, "g")
	enableEcho(t, p.A, p.Link.IfA)
	enableEcho(t, p.B, p.Link.IfB)
	conf := strings.Replace(frrlab.BFDConfig(nsAddrA.String(), nsAddrB.String(), 300, 300, 3, false),
		"  detect-multiplier 3\n", "  detect-multiplier 3\n  echo-mode\n  echo receive-interval 200\n  echo transmit-interval 200\n", 1)
	f, err := frrlab.StartFRR(p.B,
		frrlab.Daemon{Name: "zebra", Config: "log timestamp precision 6\n"},
		frrlab.Daemon{Name: "bfdd", Config: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := f.Vtysh("show bfd peers", "show bfd peers counters")
			t.Logf("bfdd:\n%s\n%s", out, f.Log("bfdd"))
		}
		f.Close()
	})
	m := bfd.NewManager(bfd.WithNetNSPath(p.A.Path()))
	t.Cleanup(func() { m.Close() })
	ev, cancel := m.Subscribe()
	defer cancel()
	prof := profile(300, 300, 3)
	prof.EchoMode, prof.EchoInterval = true, 100
	if err := m.AddPeer(nsKeyAB, prof); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, nsKeyAB, bfd.StateUp, 15*time.Second)
	s := waitInfo(t, m, 10*time.Second, "echo running", func(s bfd.SessionInfo) bool {
		return s.EchoActive && s.EchoPacketsIn > 10
	})
	if s.State != bfd.StateUp {
		t.Fatalf("session left Up while echo ran: %+v", s)
	}
	drainNoChange(t, ev)
	out, _ := f.Vtysh("show bfd peers counters")
	t.Logf("our echo: %d packets back; FRR counters:\n%s", s.EchoPacketsIn, out)

	// FRR's namespace stops forwarding: our echo fails, FRR's control packets still flow.
	if _, err := p.B.Run("sysctl", "-qw", "net.ipv4.ip_forward=0"); err != nil {
		t.Fatal(err)
	}
	down := waitEvent(t, ev, nsKeyAB, bfd.StateDown, 5*time.Second)
	if down.Diag != bfd.DiagEchoFailed {
		t.Fatalf("diag %q", down.Diag)
	}
}
