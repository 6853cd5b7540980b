package proc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     Stat
		bad      bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1 1 1", Stat{State: "S", CPU: 3 * time.Second, StartTime: 1}, false},
		{"start time", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456789 8192 100", Stat{State: "S", StartTime: 123456789}, false},
		{"bad start time", "9 (x) S 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 soon 8192 100", Stat{}, true},
		{"comm with spaces and parens", "7 (a) b (c) T 1 7 7 0 -1 0 0 0 0 0 1 2 0 0", Stat{State: "T", CPU: 30 * time.Millisecond}, false},
		{"no comm", "7 S 1", Stat{}, true},
		{"truncated", "7 (x) R 1 2", Stat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("parseStat = %+v, %v; want %+v, error %v", got, err, tc.want, tc.bad)
			}
		})
	}
}

// The start time of this process is non-zero and stable, and a process
// started later has none earlier.
func TestReadStatStartTime(t *testing.T) {
	a, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadStat(os.Getpid())
	if err != nil || a.StartTime == 0 || b.StartTime != a.StartTime {
		t.Fatalf("start times %d, %d (%v); want one non-zero value", a.StartTime, b.StartTime, err)
	}
	p, err := Start("sleeper", Options{LogPath: filepath.Join(t.TempDir(), "log")}, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	c, err := ReadStat(p.PID())
	if err != nil || c.StartTime < a.StartTime { // ticks are 10 ms: often the same
		t.Errorf("child start time %d (%v), want no earlier than this process's %d", c.StartTime, err, a.StartTime)
	}
}

func TestReadStatusOfSelf(t *testing.T) {
	st, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st["Pid"] != strconv.Itoa(os.Getpid()) || kB(st["VmRSS"]) == 0 {
		t.Errorf("Pid %q VmRSS %q; want this process's", st["Pid"], st["VmRSS"])
	}
}

func TestWaitStopped(t *testing.T) {
	p, err := Start("sleeper", Options{LogPath: filepath.Join(t.TempDir(), "log")}, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.PID(), syscall.SIGCONT); p.Stop(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := WaitStopped(ctx, p.PID()); err == nil {
		t.Fatal("WaitStopped returned for a running process")
	}
	if err := syscall.Kill(p.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitStopped(ctx, p.PID()); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadStat(p.PID()); err != nil || st.State != "T" {
		t.Errorf("state %q (%v), want T", st.State, err)
	}
}

func TestSignalInNetNS(t *testing.T) {
	ns := netnstest.NS(t, netnstest.Lab(t), "psig")
	p, err := Start("sleeper", Options{LogPath: filepath.Join(t.TempDir(), "log"), NetNS: ns}, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	// `ip netns exec` enters the namespace, then execs sleep in place.
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := InNetNS(ns)
		if err == nil && slices.Equal(pids, []int{p.PID()}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("InNetNS = %v, %v; want [%d]", pids, err, p.PID())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if pids, err := SignalInNetNS(ns, syscall.SIGKILL); err != nil || len(pids) != 1 {
		t.Fatalf("SignalInNetNS = %v, %v", pids, err)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("still running after SIGKILL")
	}
}

func TestOpenFDs(t *testing.T) {
	before, err := OpenFDs(os.Getpid())
	if err != nil || before < 3 {
		t.Fatalf("OpenFDs(self) = %d, %v; want stdin, stdout and stderr at least", before, err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// ReadDir holds one descriptor of its own while it reads, in both calls.
	if n, err := OpenFDs(os.Getpid()); err != nil || n != before+1 {
		t.Fatalf("OpenFDs after one open = %d, %v; want %d", n, err, before+1)
	}
	if _, err := OpenFDs(1 << 30); err == nil {
		t.Fatal("OpenFDs of a pid that does not exist succeeded")
	}
}

// ReadUsage splits the RSS into anonymous and file-backed pages, which add up
// to it (VmRSS = RssAnon + RssFile + RssShmem).
func TestReadUsageSplitsRSS(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSSAnon == 0 || u.RSSFile == 0 || u.RSSAnon+u.RSSFile > u.RSS {
		t.Errorf("RSS %d, anonymous %d, file-backed %d: want both > 0 and their sum <= RSS", u.RSS, u.RSSAnon, u.RSSFile)
	}
}

func TestParseSystemCPU(t *testing.T) {
	s, err := parseSystemCPU([]byte("cpu  100 20 30 400 50 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	// user nice system irq softirq steal = 171 ticks busy; + idle, iowait = 621.
	if s.Busy != 1710*time.Millisecond || s.Total != 6210*time.Millisecond {
		t.Errorf("got busy %v total %v, want 1.71s and 6.21s", s.Busy, s.Total)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 x 4 5"} {
		if _, err := parseSystemCPU([]byte(bad)); err == nil {
			t.Errorf("parseSystemCPU(%q) accepted", bad)
		}
	}
	if _, err := ReadSystemCPU(); err != nil {
		t.Errorf("ReadSystemCPU: %v", err)
	}
}

func TestReadEphemeralPorts(t *testing.T) {
	lo, hi, err := ReadEphemeralPorts()
	if err != nil || lo < 1 || hi > 65535 || lo > hi {
		t.Fatalf("ephemeral ports %d-%d, %v", lo, hi, err)
	}
	dir := t.TempDir()
	for content, ok := range map[string]bool{"32768\t60999\n": true, "60999 32768": false, "x y": false} {
		p := filepath.Join(dir, "range")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readPortRange(p); (err == nil) != ok {
			t.Errorf("%q: %v", content, err)
		}
	}
	if _, _, err := readPortRange(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing range file read")
	}
}
