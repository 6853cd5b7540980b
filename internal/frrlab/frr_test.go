package frrlab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

func TestIsDaemonOf(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		want    bool
	}{
		{"our bfdd", "/usr/lib/frr/bfdd\x00-N\x00elb-x-tor1\x00-f\x00/etc/frr/elb-x-tor1/bfdd.conf\x00", true},
		{"long option", "/usr/lib/frr/bgpd\x00--pathspace\x00elb-x-tor1\x00", true},
		{"other pathspace", "/usr/lib/frr/bfdd\x00-N\x00elb-x-tor10\x00", false},
		{"host frr without pathspace", "/usr/lib/frr/bgpd\x00-d\x00-F\x00traditional\x00", false},
		{"not an frr daemon", "/usr/bin/sleep\x00-N\x00elb-x-tor1\x00", false},
		{"name as the last argument", "/usr/lib/frr/zebra\x00-N\x00", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsDaemonOf([]byte(tc.cmdline), "elb-x-tor1"); got != tc.want {
				t.Errorf("IsDaemonOf(%q) = %v, want %v", tc.cmdline, got, tc.want)
			}
		})
	}
}

// TestVTY drives bfdd over its vty socket: a query, a configuration that takes,
// one the daemon refuses (reported with the command), and reconnection after the
// connection broke. KillLeftovers then leaves nothing of the pathspace.
func TestVTY(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons")
	}
	Require(t)
	lab := netns.NewLab()
	t.Cleanup(func() { _ = lab.Close() })
	name, err := lab.NS("vty")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { KillLeftovers(name) })
	f, err := StartFRR(&netns.NS{Name: name},
		Daemon{Name: "zebra", Config: "log timestamp precision 6\n"},
		Daemon{Name: "bfdd", Config: "bfd\n!\n"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := DialVTY(ctx, name, "bfdd")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	out, err := v.Run(ctx, "show bfd peers json")
	if err != nil || strings.TrimSpace(out) != "[\n]" && strings.TrimSpace(out) != "[]" {
		t.Fatalf("show bfd peers json = %q, %v; want an empty list", out, err)
	}
	if err := v.Configure(ctx, "bfd", "peer 192.0.2.9", "detect-multiplier 4"); err != nil {
		t.Fatal(err)
	}
	peers, err := f.BFDPeers()
	if err != nil || len(peers) != 1 || peers[0].Peer != "192.0.2.9" || peers[0].DetectMultiplier != 4 {
		t.Fatalf("peers after configure = %+v, %v", peers, err)
	}
	err = v.Configure(ctx, "bfd", "no-such-command 1")
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Command != "no-such-command 1" {
		t.Fatalf("bad line: err %v, want a CommandError naming the line", err)
	}
	// Still usable, and out of configuration mode.
	if _, err := v.Run(ctx, "show bfd peers json"); err != nil {
		t.Fatalf("after a refused line: %v", err)
	}
	v.mu.Lock()
	_ = v.conn.Close() // break the connection under the client
	v.mu.Unlock()
	if _, err := v.Run(ctx, "show bfd peers json"); err == nil {
		t.Log("first command after the break succeeded")
	}
	if _, err := v.Run(ctx, "show bfd peers json"); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}

	// A daemon whose parent died (a crashed test) is found by its pid file and
	// killed; the directories go.
	pid, _ := f.PID("bfdd")
	KillLeftovers(name)
	gone := func() bool {
		st, err := proc.ReadStat(pid)
		return err != nil || st.State == "Z" // a zombie until Close reaps it
	}
	for deadline := time.Now().Add(5 * time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !gone() {
		t.Errorf("bfdd (pid %d) survived KillLeftovers", pid)
	}
	if _, err := os.Stat(RunDir(name)); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", RunDir(name), err)
	}
	if _, err := os.Stat("/etc/frr/" + name); !os.IsNotExist(err) {
		t.Errorf("/etc/frr/%s still exists (%v)", name, err)
	}
}
