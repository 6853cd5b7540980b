package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

func TestStartStopAndLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	p, err := Start("sleeper", Options{LogPath: log}, "sh", "-c", "echo hello; echo world >&2; exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	if exited, _ := p.Exited(); exited {
		t.Fatal("exited at once")
	}
	u, err := ReadUsage(p.PID())
	if err != nil || u.RSS == 0 || u.PeakRSS < u.RSS {
		t.Fatalf("ReadUsage = %+v, %v; want RSS > 0 and peak >= RSS", u, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Tail(5), "world") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := p.Tail(1); got != "world" {
		t.Fatalf("Tail(1) = %q, want %q", got, "world")
	}
	p.Stop(2 * time.Second)
	exited, err := p.Exited()
	if !exited || err == nil {
		t.Fatalf("after Stop: exited=%v err=%v; want a process ended by SIGTERM", exited, err)
	}
	if _, err := os.Stat(log); err != nil {
		t.Fatal(err)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	p, err := Start("stubborn", Options{LogPath: filepath.Join(t.TempDir(), "log")}, "sh", "-c", "trap '' TERM; sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the trap be set
	p.Stop(200 * time.Millisecond)
	if exited, _ := p.Exited(); !exited {
		t.Fatal("still running after Stop")
	}
}

func TestAppendKeepsTheEarlierLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	for i, word := range []string{"first", "second"} {
		p, err := Start("echo", Options{LogPath: log, Append: i > 0}, "echo", word)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
	}
	if got := (&Process{LogPath: log}).Tail(5); got != "first\nsecond" {
		t.Fatalf("log = %q, want both runs", got)
	}
}

// A program started with Credential, AmbientCaps and NetNS runs as that user,
// with exactly those capabilities, inside the namespace, and outlives the
// goroutine that started it.
func TestCredentialAmbientCapsInNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and change user")
	}
	ns := netnstest.NS(t, netnstest.Lab(t), "proc")
	var st syscall.Stat_t
	if err := syscall.Stat(netns.Path(ns), &st); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "log")
	script := `sleep 0.5; grep -E '^(Uid|Gid|CapEff|CapAmb):' /proc/self/status; readlink /proc/self/ns/net`
	p, err := Start("creds", Options{LogPath: log, NetNS: ns,
		Credential:  &syscall.Credential{Uid: 65534, Gid: 65534},
		AmbientCaps: []uintptr{unix.CAP_NET_RAW}}, "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		p.Stop(time.Second)
		t.Fatal("did not end")
	}
	if _, err := p.Exited(); err != nil {
		t.Fatalf("exited with %v:\n%s", err, p.Tail(20))
	}
	out := p.Tail(20)
	fields := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "net:") {
			fields[k] = strings.Fields(v)[0]
		}
	}
	netRaw := fmt.Sprintf("%016x", uint64(1)<<unix.CAP_NET_RAW)
	want := map[string]string{"Uid": "65534", "Gid": "65534", "CapEff": netRaw, "CapAmb": netRaw}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q\n%s", k, fields[k], v, out)
		}
	}
	if wantNS := fmt.Sprintf("net:[%d]", st.Ino); !strings.Contains(out, wantNS) {
		t.Errorf("not in namespace %s (%s):\n%s", ns, wantNS, out)
	}
}

// The OS thread that forks a child into a network namespace outlives the
// child: it goes back to the host namespace and to the runtime. A thread
// that ended instead took down, by their parent-death signal, every other
// child forked from it earlier (the test apiserver, killed between two
// subtests of speaker/app's TestSpeakerRunsAsManifestUser: "connection
// refused" for 30 s).
func TestNetNSForkThreadSurvives(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace and change user")
	}
	ns := netnstest.NS(t, netnstest.Lab(t), "procthr")
	self, err := os.Readlink(fmt.Sprintf("/proc/self/task/%d/ns/net", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	// Three children: a goroutine that ends locked on the main thread wedges
	// it instead of ending it, so one of them could go unnoticed.
	for i := range 3 {
		p, err := Start("short", Options{LogPath: filepath.Join(t.TempDir(), "log"), NetNS: ns,
			Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}, "true")
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		<-p.released
		tid := p.forkTID
		if tid == 0 {
			t.Fatal("the forking thread was not recorded")
		}
		task := fmt.Sprintf("/proc/self/task/%d", tid)
		for range 20 {
			if _, err := os.Stat(task); err != nil {
				t.Fatalf("child %d: thread %d, which forked it in %s, ended with it: %v", i, tid, ns, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		b, err := os.Readlink(task + "/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		if b != self {
			t.Errorf("child %d: thread %d is in %s after the child ended, the process in %s", i, tid, b, self)
		}
	}
}
