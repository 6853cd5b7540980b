package netns_test

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// Deleting a namespace tears its veths down asynchronously in the kernel, so
// a host end may vanish between DeleteHostLink's lookup and its delete; that
// must still count as deleted (a fabric's Down does exactly this sequence).
func TestDeleteHostLinkRacingNamespaceTeardown(t *testing.T) {
	needRoot(t)
	lab := netnstest.Lab(t)
	br := "elbbr" + lab.ID()
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.DeleteHostLink(br) })
	const rounds, links = 30, 8
	for r := 0; r < rounds; r++ {
		ns := netnstest.NS(t, lab, fmt.Sprintf("h%d", r))
		var hosts []string
		for i := 0; i < links; i++ {
			h := fmt.Sprintf("elbh%s%d-%d", lab.ID(), r, i)
			if err := netns.AddHostVeth(ns, fmt.Sprintf("eth%d", i), h, br); err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, h)
		}
		// A process dying in the namespace holds it (and its veths) until
		// it has exited, which ends after Delete returned.
		sleeper := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); !netnsHasPID(ns, sleeper.Process.Pid); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				_ = sleeper.Process.Kill()
				t.Fatalf("round %d: sleeper never ran in %s", r, ns)
			}
		}
		_ = sleeper.Process.Kill()
		if err := netns.Delete(ns); err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if err := netns.DeleteHostLink(h); err != nil {
				t.Fatalf("round %d: %v", r, err)
			}
		}
		_ = sleeper.Wait()
	}
}

// netnsHasPID says whether pid runs in the named namespace (after `ip netns
// exec` switched it there).
func netnsHasPID(ns string, pid int) bool {
	pids, _ := proc.InNetNS(ns)
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}
