// Package idlehold keeps the fabric's GoBGP neighbors (the routers' and the
// test announcers') out of GoBGP's idle hold. After a session or a connection
// in the OPEN exchange drops, a GoBGP neighbor stays in Idle for 5 s (its idle
// hold after the first one; IdleHoldTimeAfterReset shortens only the hold
// that follows a local ResetPeer), refusing connections and not dialling.
// Real routers, and the speaker, take or make the next connection at once;
// the fabric does the same by replacing such a neighbor with a fresh one, so
// that its timings are those of the node under test, not of the harness.
package idlehold

import (
	"context"
	"fmt"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// holding are the states from which a drop to Idle puts a GoBGP neighbor into
// its idle hold: an established session that ended, and a connection closed in
// the middle of the OPEN exchange.
var holding = map[api.PeerState_SessionState]bool{
	api.PeerState_ESTABLISHED: true,
	api.PeerState_OPENSENT:    true,
	api.PeerState_OPENCONFIRM: true,
}

// Entered reports whether a neighbor whose session was in state old, and
// which is now as p says, has just entered its idle hold while enabled (a
// neighbor shut down administratively stays down). A neighbor seen for the
// first time (old UNKNOWN, the zero value) has not.
func Entered(old api.PeerState_SessionState, p *api.Peer) bool {
	st := p.GetState()
	return holding[old] && st.GetSessionState() == api.PeerState_IDLE && st.GetAdminState() == api.PeerState_UP
}

// Renew replaces the neighbor want names with want if GoBGP still has it in
// Idle and enabled, and it is not a peer restarting gracefully (its routes
// stay, stale, with the neighbor; a fresh neighbor would drop them). It
// reports whether it replaced the neighbor.
func Renew(ctx context.Context, srv *server.BgpServer, want *api.Peer) (bool, error) {
	return replace(ctx, srv, want, func(p *api.Peer) bool {
		st := p.GetState()
		return st.GetSessionState() == api.PeerState_IDLE && st.GetAdminState() == api.PeerState_UP &&
			!p.GetGracefulRestart().GetPeerRestarting()
	})
}

// Enable enables the neighbor want names, which was shut down
// administratively, by replacing it with a fresh neighbor: GoBGP's EnablePeer
// leaves it in its idle hold for 5 s, refusing connections, where a real
// router takes the peer's next connection at once. A neighbor not shut down
// is left as it is.
//
// A node connecting in the moment between the delete and the add would meet
// the router's dynamic range instead and make AddPeer fail; the caller
// reports that error.
func Enable(ctx context.Context, srv *server.BgpServer, want *api.Peer) error {
	_, err := replace(ctx, srv, want, adminDown)
	return err
}

// Disable shuts the neighbor at addr down administratively (a NOTIFICATION
// Cease with communication) and returns once GoBGP reports it down: its
// DisablePeer only queues the request for the neighbor's state machine, and
// an Enable that read the neighbor before that would find nothing to do.
func Disable(ctx context.Context, srv *server.BgpServer, addr, communication string) error {
	if err := srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr, Communication: communication}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		down, err := is(ctx, srv, addr, adminDown)
		if err != nil || down {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("neighbor %s not reported down: %w", addr, ctx.Err())
		case <-tick.C:
		}
	}
}

func adminDown(p *api.Peer) bool { return p.GetState().GetAdminState() != api.PeerState_UP }

// is reports whether GoBGP's neighbor at addr satisfies pred.
func is(ctx context.Context, srv *server.BgpServer, addr string, pred func(*api.Peer) bool) (bool, error) {
	ok := false
	err := srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) { ok = pred(p) })
	return ok, err
}

// replace deletes the neighbor want names and adds want, if the neighbor
// satisfies pred; it reports whether it did.
func replace(ctx context.Context, srv *server.BgpServer, want *api.Peer, pred func(*api.Peer) bool) (bool, error) {
	addr := want.GetConf().GetNeighborAddress()
	if ok, err := is(ctx, srv, addr, pred); err != nil || !ok {
		return false, err
	}
	if err := srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
		return false, err
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: want}); err != nil {
		return false, err
	}
	return true, nil
}
