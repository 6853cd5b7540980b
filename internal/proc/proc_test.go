package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
