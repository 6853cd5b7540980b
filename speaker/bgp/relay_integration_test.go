package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// TestReceivedRoutesAreNotKept: a ToR that sends the node a big table must not
// fill the speaker's memory. The speaker imports nothing; it must not keep what
// it receives either (GoBGP's adj-RIB-in holds every received path before an
// import policy can drop it).
func TestReceivedRoutesAreNotKept(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 received routes")
	}
	rns := inLab(t)
	if rns == "" {
		return
	}
	const n = 20000
	tor, err := testrouter.Start(testrouter.Config{
		ASN: 65000, RouterID: "10.0.0.1", Listen: []string{"10.0.0.1"}, Port: 179,
		Neighbors:      []testrouter.Neighbor{{Address: speakerAddr, ASN: 65100}},
		OriginateHosts: &testrouter.HostRange{First: "198.18.0.0", Count: n},
	}, testrouter.Options{NetNS: rns, Stderr: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tor.Stop)
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(sp.Close)
	_, h0 := settle()
	if err := sp.SetSessions([]announce.Session{testSession("tor1", "10.0.0.1", 65000)}); err != nil {
		t.Fatal(err)
	}
	waitUp(t, tor, true)
	sp.mu.Lock()
	sess := sp.sessions["tor1"]
	sp.mu.Unlock()
	received := func() uint64 {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		_, r := sess.counters()
		return r
	}
	deadline := time.Now().Add(60 * time.Second)
	for received() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the speaker saw %d of the router's %d prefixes within 60 s", received(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sp.mu.Lock()
	var adjIn int
	err = sess.srv.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_ADJ_IN,
		Name: sess.peer.Conf.NeighborAddress, Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}},
		func(*api.Destination) { adjIn++ })
	sp.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	_, h1 := settle()
	t.Logf("received %d prefixes; adj-RIB-in holds %d; heap in use %.1f -> %.1f MiB", received(), adjIn, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if adjIn != 0 {
		t.Errorf("GoBGP's adj-RIB-in holds %d received paths, want none", adjIn)
	}
	if grown := int64(h1) - int64(h0); grown > 4<<20 {
		t.Errorf("heap in use grew by %.1f MiB with %d received prefixes; nothing received may be kept", float64(grown)/(1<<20), n)
	}
}

// TestLoopbackHopIsSigned: GoBGP's loopback listener takes only the relay. A
// local process that connects without the session's TCP MD5 key gets no
// connection (the kernel drops unsigned segments), so it cannot take the
// relay's place and receive or send the node's routes.
func TestLoopbackHopIsSigned(t *testing.T) {
	if hopKey() == "" {
		t.Skip("kernel cannot sign TCP on a listener (CONFIG_TCP_MD5SIG)")
	}
	sp := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	t.Cleanup(sp.Close)
	// A peer nobody listens on: the relay keeps trying; GoBGP waits.
	s := testSession("tor1", "127.0.0.1", 65000)
	s.PeerPort, s.SourceAddress = 9, netip.Addr{}
	if err := sp.SetSessions([]announce.Session{s}); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	listen, key := sp.sessions["tor1"].listen, sp.sessions["tor1"].hopKey
	sp.mu.Unlock()
	if key == "" {
		t.Fatal("session started without a key for the loopback hop")
	}
	d := net.Dialer{Timeout: 500 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	if c, err := d.Dial("tcp4", listen.String()); err == nil {
		c.Close()
		t.Fatalf("an unsigned connection to GoBGP's listener %s was accepted", listen)
	}
	// The same dial with the key is accepted and answered with an OPEN.
	d.Control = func(_, _ string, c syscall.RawConn) error { return sockopts(c, hopLoopback, key, 0) }
	c, err := d.Dial("tcp4", listen.String())
	if err != nil {
		t.Fatalf("signed dial: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if m, err := readMessage(c, nil); err != nil || msgType(m) != msgOpen {
		t.Fatalf("signed connection: %v (want GoBGP's OPEN)", err)
	}
}
