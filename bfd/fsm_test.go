package bfd

import (
	"testing"
	"time"
)

// TestTransition is the full RFC 5880 section 6.2 state table.
func TestTransition(t *testing.T) {
	tests := []struct {
		cur  State
		ev   Event
		next State
		diag Diagnostic
	}{
		// AdminDown: received packets are discarded, timers do not apply.
		{StateAdminDown, EventRecvAdminDown, StateAdminDown, DiagNone},
		{StateAdminDown, EventRecvDown, StateAdminDown, DiagNone},
		{StateAdminDown, EventRecvInit, StateAdminDown, DiagNone},
		{StateAdminDown, EventRecvUp, StateAdminDown, DiagNone},
		{StateAdminDown, EventDetectTimeout, StateAdminDown, DiagNone},
		{StateAdminDown, EventAdminDown, StateAdminDown, DiagNone},
		{StateAdminDown, EventAdminUp, StateDown, DiagNone},
		{StateAdminDown, EventEchoTimeout, StateAdminDown, DiagNone},
		// Down
		{StateDown, EventRecvAdminDown, StateDown, DiagNone},
		{StateDown, EventRecvDown, StateInit, DiagNone},
		{StateDown, EventRecvInit, StateUp, DiagNone},
		{StateDown, EventRecvUp, StateDown, DiagNone},
		{StateDown, EventDetectTimeout, StateDown, DiagNone},
		{StateDown, EventAdminDown, StateAdminDown, DiagAdminDown},
		{StateDown, EventAdminUp, StateDown, DiagNone},
		{StateDown, EventEchoTimeout, StateDown, DiagNone},
		// Init
		{StateInit, EventRecvAdminDown, StateDown, DiagNeighborSignaledDown},
		{StateInit, EventRecvDown, StateInit, DiagNone},
		{StateInit, EventRecvInit, StateUp, DiagNone},
		{StateInit, EventRecvUp, StateUp, DiagNone},
		{StateInit, EventDetectTimeout, StateDown, DiagControlDetectionTimeExpired},
		{StateInit, EventAdminDown, StateAdminDown, DiagAdminDown},
		{StateInit, EventEchoTimeout, StateDown, DiagEchoFailed},
		// Up
		{StateUp, EventRecvAdminDown, StateDown, DiagNeighborSignaledDown},
		{StateUp, EventRecvDown, StateDown, DiagNeighborSignaledDown},
		{StateUp, EventRecvInit, StateUp, DiagNone},
		{StateUp, EventRecvUp, StateUp, DiagNone},
		{StateUp, EventDetectTimeout, StateDown, DiagControlDetectionTimeExpired},
		{StateUp, EventAdminDown, StateAdminDown, DiagAdminDown},
		{StateUp, EventAdminUp, StateUp, DiagNone},
		{StateUp, EventEchoTimeout, StateDown, DiagEchoFailed},
	}
	for _, tt := range tests {
		next, diag := Transition(tt.cur, tt.ev)
		if next != tt.next || diag != tt.diag {
			t.Errorf("%s + %s = %s/%q, want %s/%q", tt.cur, tt.ev, next, diag, tt.next, tt.diag)
		}
	}
}

func TestRecvEvent(t *testing.T) {
	for s, want := range map[State]Event{StateAdminDown: EventRecvAdminDown, StateDown: EventRecvDown, StateInit: EventRecvInit, StateUp: EventRecvUp} {
		if got := RecvEvent(s); got != want {
			t.Errorf("RecvEvent(%s) = %s, want %s", s, got, want)
		}
	}
}

func TestTxInterval(t *testing.T) {
	tests := []struct {
		local, remote uint32
		want          time.Duration
	}{
		{300000, 300000, 300 * time.Millisecond},
		{50000, 300000, 300 * time.Millisecond}, // remote cannot receive faster
		{1000000, 50000, time.Second},           // we do not want to send faster
		{300000, 0, 0},                          // remote asks for no periodic packets
		{300000, 1, 300 * time.Millisecond},     // initial RemoteMinRxInterval of 1 us
	}
	for _, tt := range tests {
		if got := TxInterval(tt.local, tt.remote); got != tt.want {
			t.Errorf("TxInterval(%d, %d) = %v, want %v", tt.local, tt.remote, got, tt.want)
		}
	}
}

func TestJitter(t *testing.T) {
	const iv = 1000 * time.Millisecond
	tests := []struct {
		mult uint8
		r    float64
		want time.Duration
	}{
		{3, 0, iv},                       // no reduction
		{3, 0.5, 875 * time.Millisecond}, // 12.5%
		{3, 0.999999, 750 * time.Millisecond},
		{1, 0, 900 * time.Millisecond}, // at least 10% with DetectMult 1
		{1, 0.999999, 750 * time.Millisecond},
	}
	for _, tt := range tests {
		got := Jitter(iv, tt.mult, tt.r)
		if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("Jitter(%v, %d, %v) = %v, want %v", iv, tt.mult, tt.r, got, tt.want)
		}
	}
	// Bounds over many draws, both regimes.
	c := &core{rng: 42}
	for range 10000 {
		if j := Jitter(iv, 3, c.random()); j <= 750*time.Millisecond || j > iv {
			t.Fatalf("jitter %v outside (75%%, 100%%]", j)
		}
		if j := Jitter(iv, 1, c.random()); j <= 750*time.Millisecond || j > 900*time.Millisecond {
			t.Fatalf("mult-1 jitter %v outside (75%%, 90%%]", j)
		}
	}
}

func TestDetectionTime(t *testing.T) {
	tests := []struct {
		mult              uint8
		localRx, remoteTx uint32
		want              time.Duration
	}{
		{3, 300000, 300000, 900 * time.Millisecond},
		{3, 50000, 300000, 900 * time.Millisecond}, // remote sends slower than we could receive
		{5, 300000, 50000, 1500 * time.Millisecond},
		{3, 300000, 1000000, 3 * time.Second}, // remote not Up yet: 1 s floor
		{0, 300000, 300000, 0},
	}
	for _, tt := range tests {
		if got := DetectionTime(tt.mult, tt.localRx, tt.remoteTx); got != tt.want {
			t.Errorf("DetectionTime(%d, %d, %d) = %v, want %v", tt.mult, tt.localRx, tt.remoteTx, got, tt.want)
		}
	}
}

func TestPathFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   StateChange
		want bool
	}{
		{"detection time expired", StateChange{Old: StateUp, New: StateDown, Diag: DiagControlDetectionTimeExpired}, true},
		{"echo failed", StateChange{Old: StateUp, New: StateDown, Diag: DiagEchoFailed}, true},
		{"peer AdminDown (RFC 5882 3.2)", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateAdminDown, RemoteDiag: DiagAdminDown}, false},
		{"peer restarted its session", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateDown, RemoteDiag: DiagNone}, false},
		{"peer Down after its own AdminDown", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateDown, RemoteDiag: DiagAdminDown}, false},
		{"peer restarted after our signal (FRR re-registering)", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateDown, RemoteDiag: DiagNeighborSignaledDown}, false},
		{"peer lost our packets", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateDown, RemoteDiag: DiagControlDetectionTimeExpired}, true},
		{"peer path down", StateChange{Old: StateUp, New: StateDown, Diag: DiagNeighborSignaledDown,
			RemoteState: StateDown, RemoteDiag: DiagPathDown}, true},
		{"local admin down", StateChange{Old: StateUp, New: StateAdminDown, Diag: DiagAdminDown}, false},
		{"never was up", StateChange{Old: StateInit, New: StateDown, Diag: DiagControlDetectionTimeExpired}, false},
		{"coming up", StateChange{Old: StateInit, New: StateUp}, false},
	} {
		if got := tc.ev.PathFailure(); got != tc.want {
			t.Errorf("%s: PathFailure() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTransitionCarriesRemoteDiagnostic: the state change a received Down causes
// says what the peer said, so clients can tell a restart from a failure.
func TestTransitionCarriesRemoteDiagnostic(t *testing.T) {
	now := time.Unix(0, 0)
	c := newCore(1, sessionParams{DesiredMinTx: 300000, RequiredMinRx: 300000, DetectMult: 3}, false, 1, now)
	c.receive(ControlPacket{Version: Version, State: StateDown, DetectMult: 3, MyDiscriminator: 9, DesiredMinTxInterval: 300000, RequiredMinRxInterval: 300000}, now)
	c.receive(ControlPacket{Version: Version, State: StateUp, DetectMult: 3, MyDiscriminator: 9, YourDiscriminator: 1, DesiredMinTxInterval: 300000, RequiredMinRxInterval: 300000}, now)
	if c.state != StateUp {
		t.Fatalf("state %v, want Up", c.state)
	}
	out := c.receive(ControlPacket{Version: Version, State: StateAdminDown, Diag: DiagAdminDown, DetectMult: 3, MyDiscriminator: 9, YourDiscriminator: 1}, now)
	if !out.changed || out.to != StateDown || out.remoteState != StateAdminDown || out.remoteDiag != DiagAdminDown {
		t.Fatalf("out = %+v", out)
	}
}
