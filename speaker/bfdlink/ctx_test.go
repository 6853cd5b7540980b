package bfdlink

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// contextFrom returns a context cancelled when stop closes.
func contextFrom(stop <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// runLink runs link until the test ends.
func runLink(t *testing.T, link *Link) {
	t.Helper()
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := contextFrom(stop)
		defer cancel()
		link.Run(ctx)
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// frrSession is the BGPPeer "tor" of the FRR tests: AS 65100 to 65000 at
// peer, BFD every 100 ms, 3 missed.
func frrSession(peer, routerID netip.Addr) announce.Session {
	u := func(v uint32) *uint32 { return &v }
	return announce.Session{Name: "tor", MyASN: 65100, PeerASN: 65000, PeerAddress: peer, PeerPort: 179,
		RouterID: routerID, HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, ConnectTime: time.Second,
		BFD: &announce.BFDProfile{Name: "fast", ReceiveInterval: u(100), TransmitInterval: u(100), DetectMultiplier: u(3)}}
}
