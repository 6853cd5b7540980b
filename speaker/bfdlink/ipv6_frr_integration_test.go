package bfdlink

import (
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/frrlab"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/bgp"
)

const (
	speakerAddr6 = "fd00::21"
	frrAddr6     = "fd00::1"
)

const bgpdConf6 = `frr defaults datacenter
hostname tor
log timestamp precision 6
!
router bgp 65000
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor fd00::21 remote-as 65100
 neighbor fd00::21 passive
 neighbor fd00::21 timers 30 90
 neighbor fd00::21 bfd
 neighbor fd00::21 bfd profile fast
 address-family ipv6 unicast
  neighbor fd00::21 activate
 exit-address-family
!
`

// TestFRRInteropIPv6: a BGPPeer with an IPv6 peerAddress and a bfdProfile
// gets a BGP session and a single-hop BFD session over IPv6 (UDP 3784, hop
// limit 255) with FRR; FRR receives the Service's /128 with the node's IPv6
// address as next-hop, and when FRR's bfdd freezes our BFD shuts the BGP
// session, so the route leaves FRR long before the 90 s hold time, and comes
// back when BFD does.
func TestFRRInteropIPv6(t *testing.T) {
	if !netnstest.IsChild() {
		frrlab.Require(t)
	}
	rns := netnstest.InLab(t, []string{frrAddr + "/24", frrAddr6 + "/64"}, []string{speakerAddr + "/24", speakerAddr6 + "/64"}, func(rns string) {
		t.Cleanup(func() { frrlab.KillLeftovers(rns) })
	})
	if rns == "" {
		return
	}
	in, err := frrlab.StartFRR(&netns.NS{Name: rns}, frrlab.Daemon{Name: "zebra", Config: "hostname tor\n"},
		frrlab.Daemon{Name: "bfdd", Config: bfddConf}, frrlab.Daemon{Name: "bgpd", Config: bgpdConf6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sp := bgp.New(bgp.Options{Logger: log})
	t.Cleanup(sp.Close)
	mgr := bfd.NewManager(bfd.WithLogger(log))
	t.Cleanup(func() { _ = mgr.Close() })
	link := New(mgr, sp, log, nil)
	runLink(t, link)

	sess := frrSession(netip.MustParseAddr(frrAddr6), netip.MustParseAddr(speakerAddr))
	if err := sp.SetSessions([]announce.Session{sess}); err != nil {
		t.Fatal(err)
	}
	if err := link.SetSessions([]announce.Session{sess}); err != nil {
		t.Fatal(err)
	}
	const prefix = "2001:db8::5/128"
	if err := sp.Apply("default/web", []announce.Route{{Peer: "tor", Prefix: netip.MustParsePrefix(prefix)}}); err != nil {
		t.Fatal(err)
	}
	first := waitFRR(t, in, prefix, speakerAddr6, "", 60*time.Second)
	t.Logf("first route on FRR after %v", first)

	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := in.VtyshDaemon("bfdd", "show bfd peers json")
		if strings.Contains(out, `"status":"up"`) && strings.Contains(out, speakerAddr6) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR BFD not up with %s: %s", speakerAddr6, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := in.Signal("bfdd", syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	gone := waitFRR(t, in, prefix, "", "", 5*time.Second)
	t.Logf("route withdrawn on FRR %v after freezing bfdd (hold time 90s)", gone)
	if sp.SessionUp("tor") {
		t.Error("BGP session still up after BFD down")
	}
	if err := in.Signal("bfdd", syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	back := waitFRR(t, in, prefix, speakerAddr6, "", 30*time.Second)
	t.Logf("route back on FRR %v after thawing bfdd", back)
}
