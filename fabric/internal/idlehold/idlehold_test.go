package idlehold

import (
	"testing"

	api "github.com/osrg/gobgp/v3/api"
)

func TestEntered(t *testing.T) {
	peer := func(s api.PeerState_SessionState, admin api.PeerState_AdminState) *api.Peer {
		return &api.Peer{State: &api.PeerState{SessionState: s, AdminState: admin}}
	}
	for _, c := range []struct {
		old  api.PeerState_SessionState
		now  *api.Peer
		want bool
	}{
		{api.PeerState_ESTABLISHED, peer(api.PeerState_IDLE, api.PeerState_UP), true},
		{api.PeerState_OPENSENT, peer(api.PeerState_IDLE, api.PeerState_UP), true},
		{api.PeerState_OPENCONFIRM, peer(api.PeerState_IDLE, api.PeerState_UP), true},
		// Shut down administratively: stays down.
		{api.PeerState_ESTABLISHED, peer(api.PeerState_IDLE, api.PeerState_DOWN), false},
		// No session or OPEN exchange ended: no hold.
		{api.PeerState_ACTIVE, peer(api.PeerState_IDLE, api.PeerState_UP), false},
		{api.PeerState_CONNECT, peer(api.PeerState_IDLE, api.PeerState_UP), false},
		{api.PeerState_UNKNOWN, peer(api.PeerState_IDLE, api.PeerState_UP), false},
		// Not idle (yet).
		{api.PeerState_ESTABLISHED, peer(api.PeerState_ACTIVE, api.PeerState_UP), false},
		{api.PeerState_OPENSENT, peer(api.PeerState_OPENCONFIRM, api.PeerState_UP), false},
	} {
		if got := Entered(c.old, c.now); got != c.want {
			t.Errorf("Entered(%v, %v/%v) = %v, want %v", c.old, c.now.State.SessionState, c.now.State.AdminState, got, c.want)
		}
	}
}
