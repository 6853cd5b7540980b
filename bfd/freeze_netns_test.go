package bfd_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// freezeChildEnv makes the test binary a BFD peer (see freezeChild) instead of
// running the tests: a separate process that can be frozen with SIGSTOP.
const freezeChildEnv = "ECMPLB_BFD_FREEZE_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(freezeChildEnv); v != "" {
		os.Exit(freezeChild(v))
	}
	os.Exit(m.Run())
}

// freezeChild runs one session nsKeyAB with the profile "tx,rx,mult" in the
// namespace it was started in, prints every state change, and runs until
// SIGTERM.
func freezeChild(spec string) int {
	var tx, rx, mult uint32
	if _, err := fmt.Sscanf(spec, "%d,%d,%d", &tx, &rx, &mult); err != nil {
		fmt.Fprintln(os.Stderr, "bad profile:", spec, err)
		return 2
	}
	m := bfd.NewManager()
	ev, cancel := m.Subscribe()
	defer cancel()
	if err := m.AddPeer(nsKeyAB, profile(tx, rx, mult)); err != nil {
		fmt.Fprintln(os.Stderr, "add peer:", err)
		return 1
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	for {
		select {
		case e := <-ev:
			fmt.Printf("state %s -> %s at %s diag %s\n", e.Old, e.New, e.At.Format("15:04:05.000"), e.Diag)
		case <-term:
			m.Close()
			return 0
		}
	}
}

// TestFrozenPeerShortOfDetectionDoesNotFlap freezes a process running BFD
// (SIGSTOP) for longer than its own Detection Time but shorter than its
// peer's. The peer kept sending all along: its packets wait in the frozen
// process's socket. On the thaw that process must read them before it judges
// its detection timer, and keep the session Up; a timer judged first takes the
// session down (a BGP flap for a speaker that was only descheduled) and the
// peer sees it go Down. A freeze longer than the peer's Detection Time must
// still be detected by the peer, and the session must come back Up after the
// thaw. Cycles run at random phases against the transmit timers.
func TestFrozenPeerShortOfDetectionDoesNotFlap(t *testing.T) {
	p := newNetnsPair(t, "fz")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The frozen side A: 50 ms, multiplier 20, so its peer B detects it after
	// 1 s. B: 50 ms x 3, so A's own Detection Time is 150 ms.
	logPath := filepath.Join(t.TempDir(), "child.log")
	child, err := proc.Start("bfd-freeze-child", proc.Options{LogPath: logPath, NetNS: p.A.Name}, "env",
		freezeChildEnv+"=50,50,20", exe, "-test.run=^$")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(child.PID(), syscall.SIGCONT)
		child.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("child's state changes:\n%s", child.Tail(40))
		}
	})
	b := bfd.NewManager(bfd.WithNetNSPath(p.B.Path()))
	t.Cleanup(func() { b.Close() })
	evB, cancel := b.Subscribe()
	defer cancel()
	if err := b.AddPeer(nsKeyBA, profile(50, 50, 3)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, evB, nsKeyBA, bfd.StateUp, 10*time.Second)
	if d := sessionInfo(t, b).DetectionTime; d != time.Second {
		t.Fatalf("B's Detection Time %v, want 1s", d)
	}

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	freeze := func(d time.Duration) {
		t.Helper()
		if err := syscall.Kill(child.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		time.Sleep(d) // how long the fault lasts
		if err := syscall.Kill(child.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("frozen %s to %s", t0.Format("15:04:05.000"), time.Now().Format("15:04:05.000"))
	}
	// settled waits until B has had 10 packets from A after the thaw: A is
	// running and sending again, past whatever it did on the thaw.
	settled := func() {
		t.Helper()
		from := sessionInfo(t, b).PacketsIn
		deadline := time.Now().Add(10 * time.Second)
		for sessionInfo(t, b).PacketsIn < from+10 {
			if time.Now().After(deadline) {
				t.Fatalf("B received no packets from A for 10 s after the thaw:\n%s", child.Tail(20))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const short, long = 12, 3
	flaps := 0
	for i := range short {
		time.Sleep(time.Duration(rnd.Int64N(int64(50 * time.Millisecond)))) // random phase
		freeze(400 * time.Millisecond)
		settled()
		select {
		case ev := <-evB:
			flaps++
			t.Errorf("freeze %d (400 ms, short of B's 1 s Detection Time): B saw %s -> %s (diag %s)", i+1, ev.Old, ev.New, ev.Diag)
			waitEvent(t, evB, nsKeyBA, bfd.StateUp, 10*time.Second)
			drain(evB)
		default:
		}
	}
	if flaps > 0 {
		t.Errorf("%d of %d short freezes flapped the session", flaps, short)
	}
	for i := range long {
		time.Sleep(time.Duration(rnd.Int64N(int64(50 * time.Millisecond))))
		if err := syscall.Kill(child.PID(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		ev := waitEvent(t, evB, nsKeyBA, bfd.StateDown, 5*time.Second)
		if ev.Diag != bfd.DiagControlDetectionTimeExpired {
			t.Errorf("long freeze %d: B went Down with diag %s, want detection time expired", i+1, ev.Diag)
		}
		if err := syscall.Kill(child.PID(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("frozen %s to %s; B Down at %s", t0.Format("15:04:05.000"), time.Now().Format("15:04:05.000"), ev.At.Format("15:04:05.000"))
		waitEvent(t, evB, nsKeyBA, bfd.StateUp, 10*time.Second)
		settled()
		drain(evB)
	}
	if exited, err := child.Exited(); exited {
		t.Fatalf("child exited: %v\n%s", err, child.Tail(20))
	}
	// The child's own view: Up once at the start and once after each long
	// freeze, never more.
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ups := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var from, to, diag string
		if _, err := fmt.Sscanf(sc.Text(), "state %s -> %s at %s", &from, &to, &diag); err == nil && to == "Up" {
			ups++
		}
	}
	if want := 1 + long; ups != want {
		t.Errorf("A came Up %d times, want %d (start + %s long freezes)", ups, want, strconv.Itoa(long))
	}
}

func sessionInfo(t *testing.T, m *bfd.Manager) bfd.SessionInfo {
	t.Helper()
	s := m.Sessions()
	if len(s) != 1 {
		t.Fatalf("%d sessions", len(s))
	}
	return s[0]
}

func drain(ch <-chan bfd.StateChange) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
