package bfdlink

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
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
	speakerAddr = "10.0.0.21"
	frrAddr     = "10.0.0.1"
)

// inLab re-runs the calling test inside a speaker namespace linked to an FRR
// router namespace; in the child it returns the router namespace.
func inLab(t *testing.T) string {
	t.Helper()
	if !netnstest.IsChild() {
		frrlab.Require(t)
	}
	return netnstest.InLab(t, []string{frrAddr + "/24"}, []string{speakerAddr + "/24"}, func(rns string) {
		t.Cleanup(func() { frrlab.KillLeftovers(rns) })
	})
}

const bgpdConf = `frr defaults datacenter
hostname tor
log timestamp precision 6
!
router bgp 65000
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 10.0.0.21 remote-as 65100
 neighbor 10.0.0.21 passive
 neighbor 10.0.0.21 timers 30 90
 neighbor 10.0.0.21 bfd
 neighbor 10.0.0.21 bfd profile fast
 address-family ipv4 unicast
  neighbor 10.0.0.21 activate
 exit-address-family
!
`

const bfddConf = `hostname tor
log timestamp precision 6
bfd
 profile fast
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 !
!
`

type frrPath struct {
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
}

// frrRoute returns the route FRR holds for prefix ("" nexthop when absent).
func frrRoute(t *testing.T, in *frrlab.FRR, prefix string) (nexthop, comms string) {
	afi := "ipv4"
	if strings.Contains(prefix, ":") {
		afi = "ipv6"
	}
	out, err := in.VtyshDaemon("bgpd", "show bgp "+afi+" unicast "+prefix+" json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Paths []frrPath `json:"paths"`
	}
	_ = json.Unmarshal([]byte(out), &r)
	if len(r.Paths) == 0 || len(r.Paths[0].Nexthops) == 0 {
		return "", ""
	}
	p := r.Paths[0]
	if p.Community != nil {
		comms = p.Community.String
	}
	if p.LargeCommunity != nil {
		comms += " large:" + p.LargeCommunity.String
	}
	return p.Nexthops[0].IP, comms
}

func waitFRR(t *testing.T, in *frrlab.FRR, prefix, wantNH, wantComms string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		nh, c := frrRoute(t, in, prefix)
		if nh == wantNH && (wantNH == "" || c == wantComms) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("FRR route %s: nexthop %q communities %q, want %q %q; bgpd log:\n%s", prefix, nh, c, wantNH, wantComms, in.Log("bgpd"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFRRInterop announces to FRR bgpd over a real session and checks that a BFD
// failure (FRR's bfdd frozen) resets the BGP session at once, and that it comes back
// when BFD does.
func TestFRRInterop(t *testing.T) {
	rns := inLab(t)
	if rns == "" {
		return
	}
	in, err := frrlab.StartFRR(&netns.NS{Name: rns}, frrlab.Daemon{Name: "zebra", Config: "hostname tor\n"},
		frrlab.Daemon{Name: "bfdd", Config: bfddConf}, frrlab.Daemon{Name: "bgpd", Config: bgpdConf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close() })

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var downs atomic.Int32
	sp := bgp.New(bgp.Options{Logger: log, OnSessionChange: func(_ string, up bool) {
		if !up {
			downs.Add(1)
		}
	}})
	ctl := &countingControl{Speaker: sp}
	t.Cleanup(sp.Close)
	mgr := bfd.NewManager(bfd.WithLogger(log))
	t.Cleanup(func() { _ = mgr.Close() })
	link := New(mgr, ctl, log, nil)
	runLink(t, link)

	sess := frrSession(netip.MustParseAddr(frrAddr), netip.MustParseAddr(speakerAddr))
	if err := sp.SetSessions([]announce.Session{sess}); err != nil {
		t.Fatal(err)
	}
	if err := link.SetSessions([]announce.Session{sess}); err != nil {
		t.Fatal(err)
	}
	c1, _ := announce.ParseCommunity("65000:100")
	c2, _ := announce.ParseCommunity("large:1:2:3")
	prefix := "203.0.113.5/32"
	if err := sp.Apply("default/web", []announce.Route{{Peer: "tor", Prefix: netip.MustParsePrefix(prefix), Communities: []announce.Community{c1, c2}}}); err != nil {
		t.Fatal(err)
	}
	// FRR's bgpd re-registers its BFD session when the BGP session comes up and
	// bfdd then signals Down once (diagnostic Neighbor Signaled Session Down): no
	// path failure, so we do not shut BGP, and start-up is as fast as without BFD.
	// FRR itself resets the BGP session then (Cease, BFD Down): its own flap,
	// which costs about 1 s because the speaker reconnects at once.
	first := waitFRR(t, in, prefix, speakerAddr, "65000:100 large:1:2:3", 60*time.Second)
	t.Logf("first route on FRR after %v", first)
	// Withdraw and re-announce: FRR follows.
	if err := sp.Apply("default/web", nil); err != nil {
		t.Fatal(err)
	}
	waitFRR(t, in, prefix, "", "", 45*time.Second)
	if err := sp.Apply("default/web", []announce.Route{{Peer: "tor", Prefix: netip.MustParsePrefix(prefix), Communities: []announce.Community{c1}}}); err != nil {
		t.Fatal(err)
	}
	waitFRR(t, in, prefix, speakerAddr, "65000:100", 45*time.Second)

	// BFD must be Up on both sides before the failure.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := in.VtyshDaemon("bfdd", "show bfd peers json")
		if strings.Contains(out, `"status":"up"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR BFD not up: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if n := ctl.disables.Load(); n != 0 {
		t.Errorf("the speaker shut BGP %d times before any failure (FRR's BFD re-registration taken as a failure)", n)
	}
	t.Logf("BGP session drops before the failure, all initiated by FRR: %d", downs.Load())

	// Freeze FRR's bfdd: our BFD sees Down within ~300 ms and shuts the BGP session,
	// so FRR drops the route long before the 90 s hold time.
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
	back := waitFRR(t, in, prefix, speakerAddr, "65000:100", 30*time.Second)
	t.Logf("route back on FRR %v after thawing bfdd", back)
	if back > 3*time.Second {
		t.Errorf("route back %v after the thaw, want within 3 s", back)
	}
}

// countingControl counts the BGP shutdowns the link asks for.
type countingControl struct {
	*bgp.Speaker
	disables atomic.Int32
}

func (c *countingControl) SetSessionEnabled(peer string, on bool) error {
	if !on {
		c.disables.Add(1)
	}
	return c.Speaker.SetSessionEnabled(peer, on)
}
