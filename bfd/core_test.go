package bfd

import (
	"testing"
	"time"
)

const (
	ms        = 1000 // microseconds per millisecond, for wire intervals
	localID   = 0x1001
	remoteID  = 0x2002
	tolerance = time.Microsecond
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func params(txMs, rxMs uint32, mult uint8) sessionParams {
	return sessionParams{DesiredMinTx: txMs * ms, RequiredMinRx: rxMs * ms, DetectMult: mult}
}

// remote builds a packet from the peer.
func remote(s State, your uint32, txMs, rxMs uint32) ControlPacket {
	return ControlPacket{Version: 1, State: s, DetectMult: 3, MyDiscriminator: remoteID, YourDiscriminator: your,
		DesiredMinTxInterval: txMs * ms, RequiredMinRxInterval: rxMs * ms}
}

func poll(p ControlPacket) ControlPacket  { p.Poll = true; return p }
func final(p ControlPacket) ControlPacket { p.Final = true; return p }

func onePacket(t *testing.T, out output) ControlPacket {
	t.Helper()
	if len(out.packets) != 1 {
		t.Fatalf("want one packet, got %d: %+v", len(out.packets), out.packets)
	}
	return out.packets[0]
}

// upCore brings a core with the given params to Up at t0+1s and completes
// the Poll Sequence that coming Up starts.
func upCore(t *testing.T, cfg sessionParams) *core {
	t.Helper()
	c := newCore(localID, cfg, false, 7, t0)
	c.tick(t0)
	out := c.receive(remote(StateDown, 0, 1000, 300), t0.Add(500*time.Millisecond))
	if !out.changed || out.to != StateInit {
		t.Fatalf("Down+RecvDown: %+v", out)
	}
	out = c.receive(remote(StateUp, localID, 1000, 300), t0.Add(time.Second))
	if !out.changed || out.to != StateUp {
		t.Fatalf("Init+RecvUp: %+v", out)
	}
	c.receive(final(remote(StateUp, localID, 300, 300)), t0.Add(time.Second))
	if c.polling {
		t.Fatal("poll still running after Final")
	}
	return c
}

func TestCoreFirstPacketAndSlowRate(t *testing.T) {
	c := newCore(localID, params(300, 300, 3), false, 1, t0)
	if got := c.deadline(); !got.Equal(t0) {
		t.Fatalf("first deadline %v, want now", got)
	}
	p := onePacket(t, c.tick(t0))
	want := ControlPacket{Version: 1, State: StateDown, DetectMult: 3, MyDiscriminator: localID,
		DesiredMinTxInterval: 1000 * ms, RequiredMinRxInterval: 300 * ms}
	if p != want {
		t.Fatalf("first packet %+v, want %+v", p, want)
	}
	// While not Up, packets go out at 1 s less 0-25% jitter (6.8.3).
	prev := t0
	for range 50 {
		next := c.deadline()
		gap := next.Sub(prev)
		if gap <= 750*time.Millisecond || gap > time.Second {
			t.Fatalf("slow-rate gap %v outside (750ms, 1s]", gap)
		}
		onePacket(t, c.tick(next))
		prev = next
	}
	if c.state != StateDown {
		t.Fatalf("state %s", c.state)
	}
}

func TestCorePassive(t *testing.T) {
	c := newCore(localID, params(300, 300, 3), true, 1, t0)
	if !c.deadline().IsZero() {
		t.Fatalf("passive session scheduled a packet at %v", c.deadline())
	}
	if out := c.tick(t0.Add(time.Hour)); len(out.packets) != 0 {
		t.Fatalf("passive session sent %+v", out.packets)
	}
	now := t0.Add(2 * time.Hour)
	out := c.receive(remote(StateDown, 0, 1000, 300), now)
	p := onePacket(t, out)
	if p.State != StateInit || p.YourDiscriminator != remoteID {
		t.Fatalf("reply %+v", p)
	}
	if d := c.deadline(); d.IsZero() || d.After(now) {
		t.Fatalf("passive session did not start transmitting: deadline %v", d)
	}
}

func TestCoreHandshakeAndPoll(t *testing.T) {
	c := newCore(localID, params(300, 300, 3), false, 1, t0)
	c.tick(t0)
	out := c.receive(remote(StateDown, 0, 1000, 300), t0.Add(100*time.Millisecond))
	p := onePacket(t, out)
	if out.from != StateDown || out.to != StateInit || out.diag != DiagNone {
		t.Fatalf("transition %+v", out)
	}
	if p.State != StateInit || p.YourDiscriminator != remoteID || p.Poll {
		t.Fatalf("Init packet %+v", p)
	}
	out = c.receive(remote(StateInit, localID, 1000, 300), t0.Add(200*time.Millisecond))
	p = onePacket(t, out)
	if out.to != StateUp {
		t.Fatalf("Init+RecvInit: %+v", out)
	}
	// Coming Up drops Desired Min TX from the 1 s floor to 300 ms: a Poll
	// Sequence starts, and the faster rate applies at once.
	if !p.Poll || p.Final || p.State != StateUp || p.DesiredMinTxInterval != 300*ms {
		t.Fatalf("Up packet %+v", p)
	}
	if got := c.txInterval(); got != 300*time.Millisecond {
		t.Fatalf("tx interval after Up %v, want 300ms", got)
	}
	// Periodic packets keep the P bit until the Final arrives.
	next := c.deadline()
	if gap := next.Sub(t0.Add(200 * time.Millisecond)); gap > 300*time.Millisecond {
		t.Fatalf("next packet %v after Up, want within 300ms", gap)
	}
	if p := onePacket(t, c.tick(next)); !p.Poll {
		t.Fatalf("periodic packet during poll lacks P: %+v", p)
	}
	out = c.receive(final(remote(StateUp, localID, 300, 300)), next.Add(time.Millisecond))
	if len(out.packets) != 0 || c.polling {
		t.Fatalf("after Final: packets %+v polling %v", out.packets, c.polling)
	}
	if p := onePacket(t, c.tick(c.deadline())); p.Poll {
		t.Fatalf("P bit after Final: %+v", p)
	}
	if got := c.detectionTime(); got != 900*time.Millisecond {
		t.Fatalf("detection time %v, want 900ms", got)
	}
}

func TestCoreAnswersPollWithFinal(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	now := t0.Add(2 * time.Second)
	out := c.receive(poll(remote(StateUp, localID, 1000, 300)), now)
	p := onePacket(t, out)
	if !p.Final || p.Poll {
		t.Fatalf("reply to Poll %+v", p)
	}
	// The remote now sends at 1 s: our detection time follows at once.
	if got := c.detectionTime(); got != 3*time.Second {
		t.Fatalf("detection time %v, want 3s", got)
	}
	// A Poll that arrives during our own Poll is answered with F and no P.
	c.configure(params(100, 300, 3), false, 0, now)
	if !c.polling {
		t.Fatal("no poll after local change")
	}
	p = onePacket(t, c.receive(poll(remote(StateUp, localID, 1000, 300)), now.Add(time.Millisecond)))
	if !p.Final || p.Poll {
		t.Fatalf("reply to Poll during our Poll %+v", p)
	}
}

func TestCoreDetectionTimeExpired(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	last := t0.Add(5 * time.Second)
	c.receive(remote(StateUp, localID, 300, 300), last)
	// Run the transmit timer up to just before the detection time.
	for now := c.deadline(); now.Before(last.Add(900 * time.Millisecond)); now = c.deadline() {
		if out := c.tick(now); out.changed {
			t.Fatalf("state changed at %v before detection time", now.Sub(last))
		}
	}
	if got := c.deadline(); !got.Equal(last.Add(900 * time.Millisecond)) {
		t.Fatalf("deadline %v after last packet, want 900ms", got.Sub(last))
	}
	out := c.tick(c.deadline())
	if !out.changed || out.from != StateUp || out.to != StateDown || out.diag != DiagControlDetectionTimeExpired {
		t.Fatalf("expiry %+v", out)
	}
	p := out.packets[0]
	if p.State != StateDown || p.Diag != DiagControlDetectionTimeExpired || p.YourDiscriminator != 0 {
		t.Fatalf("Down packet %+v", p)
	}
	if p.DesiredMinTxInterval != 1000*ms || c.polling {
		t.Fatalf("not back at the 1 s floor without poll: %+v polling %v", p, c.polling)
	}
	if c.remoteDiscr != 0 {
		t.Fatalf("remote discriminator %x not reset", c.remoteDiscr)
	}
}

func TestCoreDetectionInDownOnlyResetsRemote(t *testing.T) {
	c := newCore(localID, params(300, 300, 3), false, 1, t0)
	c.receive(remote(StateAdminDown, 0, 1000, 300), t0) // stays Down
	if c.state != StateDown || c.remoteDiscr != remoteID {
		t.Fatalf("state %s remote %x", c.state, c.remoteDiscr)
	}
	out := c.tick(t0.Add(3 * time.Second))
	if out.changed || c.remoteDiscr != 0 {
		t.Fatalf("expiry in Down: %+v remote %x", out, c.remoteDiscr)
	}
}

func TestCoreNeighborSignaledDown(t *testing.T) {
	for _, s := range []State{StateDown, StateAdminDown} {
		c := upCore(t, params(300, 300, 3))
		out := c.receive(remote(s, localID, 1000, 300), t0.Add(2*time.Second))
		if !out.changed || out.to != StateDown || out.diag != DiagNeighborSignaledDown {
			t.Fatalf("remote %s: %+v", s, out)
		}
		if p := onePacket(t, out); p.State != StateDown || p.Diag != DiagNeighborSignaledDown {
			t.Fatalf("remote %s: packet %+v", s, p)
		}
	}
}

func TestCoreAdminDown(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	now := t0.Add(2 * time.Second)
	out := c.adminDown(now)
	p := onePacket(t, out)
	if out.to != StateAdminDown || p.State != StateAdminDown || p.Diag != DiagAdminDown {
		t.Fatalf("admin down %+v", out)
	}
	// Packets are discarded in AdminDown and do not restart the detection timer.
	before := c.detectAt
	out = c.receive(remote(StateInit, localID, 300, 300), now.Add(time.Millisecond))
	if !out.discard || out.changed || c.state != StateAdminDown || !c.detectAt.Equal(before) {
		t.Fatalf("packet in AdminDown: %+v state %s", out, c.state)
	}
}

func TestCoreWrongYourDiscriminator(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	out := c.receive(remote(StateDown, 0xdead, 300, 300), t0.Add(2*time.Second))
	if !out.discard || out.changed || c.state != StateUp {
		t.Fatalf("foreign discriminator accepted: %+v", out)
	}
}

func TestCoreNoPeriodicTransmission(t *testing.T) {
	t.Run("remote RequiredMinRx 0", func(t *testing.T) {
		c := upCore(t, params(300, 300, 3))
		c.receive(remote(StateUp, localID, 300, 0), t0.Add(2*time.Second))
		if !c.nextTx.IsZero() {
			t.Fatalf("transmitting to a peer that asked for none: %v", c.nextTx)
		}
	})
	t.Run("remote demand mode", func(t *testing.T) {
		c := upCore(t, params(300, 300, 3))
		p := remote(StateUp, localID, 300, 300)
		p.Demand = true
		c.receive(p, t0.Add(2*time.Second))
		if !c.nextTx.IsZero() {
			t.Fatalf("transmitting in remote demand mode: %v", c.nextTx)
		}
	})
}

// TestCoreParameterChanges checks RFC 5880 6.8.3: which values apply at once
// and which wait for the Final.
func TestCoreParameterChanges(t *testing.T) {
	tests := []struct {
		name                string
		to                  sessionParams
		txDuring, txAfter   time.Duration // our transmit interval
		detDuring, detAfter time.Duration // our detection time (remote sends at 100ms, mult 3)
	}{
		{"DesiredMinTx increased: old rate until Final", params(1000, 100, 3),
			100 * time.Millisecond, time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
		{"DesiredMinTx decreased: at once", params(50, 100, 3),
			50 * time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond},
		{"RequiredMinRx increased: at once", params(100, 500, 3),
			100 * time.Millisecond, 100 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"RequiredMinRx decreased: old detection until Final", params(100, 50, 3),
			100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 150 * time.Millisecond},
		{"DetectMult changed", params(100, 100, 5),
			100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := upCore(t, params(100, 100, 3))
			now := t0.Add(2 * time.Second)
			// The remote is willing to send and receive every 20ms.
			c.receive(remote(StateUp, localID, 20, 20), now)
			if c.txInterval() != 100*time.Millisecond || c.detectionTime() != 300*time.Millisecond {
				t.Fatalf("baseline tx %v det %v", c.txInterval(), c.detectionTime())
			}
			p := onePacket(t, c.configure(tt.to, false, 0, now))
			if !p.Poll || p.DesiredMinTxInterval != tt.to.DesiredMinTx || p.RequiredMinRxInterval != tt.to.RequiredMinRx || p.DetectMult != tt.to.DetectMult {
				t.Fatalf("poll packet %+v, want new values %+v", p, tt.to)
			}
			if c.txInterval() != tt.txDuring || c.detectionTime() != tt.detDuring {
				t.Fatalf("during poll: tx %v det %v, want %v %v", c.txInterval(), c.detectionTime(), tt.txDuring, tt.detDuring)
			}
			c.receive(final(remote(StateUp, localID, 20, 20)), now.Add(time.Millisecond))
			if c.polling || c.txInterval() != tt.txAfter || c.detectionTime() != tt.detAfter {
				t.Fatalf("after Final: polling %v tx %v det %v, want %v %v", c.polling, c.txInterval(), c.detectionTime(), tt.txAfter, tt.detAfter)
			}
			if c.state != StateUp {
				t.Fatalf("flapped to %s", c.state)
			}
		})
	}
}

func TestCoreChangeDuringPollWaitsForNextPoll(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	now := t0.Add(2 * time.Second)
	c.configure(params(200, 300, 3), false, 0, now)
	out := c.configure(params(100, 300, 3), false, 0, now)
	if len(out.packets) != 0 || c.adv.DesiredMinTx != 200*ms {
		t.Fatalf("second change overrode the running poll: adv %+v", c.adv)
	}
	out = c.receive(final(remote(StateUp, localID, 300, 50)), now.Add(time.Millisecond))
	p := onePacket(t, out)
	if !c.polling || !p.Poll || p.DesiredMinTxInterval != 100*ms {
		t.Fatalf("next poll not started: %+v", p)
	}
	c.receive(final(remote(StateUp, localID, 300, 50)), now.Add(2*time.Millisecond))
	if c.polling || c.txInterval() != 100*time.Millisecond {
		t.Fatalf("after second Final: polling %v tx %v", c.polling, c.txInterval())
	}
}

func TestCoreRemoteSlowsDownAppliesAtOnce(t *testing.T) {
	c := upCore(t, params(50, 50, 3))
	now := t0.Add(2 * time.Second)
	c.receive(remote(StateUp, localID, 50, 50), now)
	if c.txInterval() != 50*time.Millisecond {
		t.Fatalf("tx %v", c.txInterval())
	}
	// The remote raises its Required Min RX: we must slow down at once.
	c.receive(poll(remote(StateUp, localID, 50, 500)), now.Add(10*time.Millisecond))
	if c.txInterval() != 500*time.Millisecond {
		t.Fatalf("tx %v after remote asked for 500ms", c.txInterval())
	}
	// The remote lowers it again: our next packet is pulled in.
	at := now.Add(20 * time.Millisecond)
	c.receive(remote(StateUp, localID, 50, 50), at)
	if gap := c.nextTx.Sub(at); gap > 50*time.Millisecond {
		t.Fatalf("next packet %v away after speed-up, want <= 50ms", gap)
	}
}

func TestCoreEcho(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	now := t0.Add(2 * time.Second)
	c.configure(params(300, 300, 3), false, 50*ms, now)
	c.receive(final(remote(StateUp, localID, 300, 300)), now) // finish any poll
	if p := c.packet(false); p.RequiredMinEchoRxInterval != 50*ms {
		t.Fatalf("echo mode does not advertise Required Min Echo RX: %+v", p)
	}
	if c.echoWanted() {
		t.Fatal("echo wanted although the peer's Required Min Echo RX is 0")
	}
	p := remote(StateUp, localID, 300, 300)
	p.RequiredMinEchoRxInterval = 100 * ms // the peer reflects no faster than 100ms
	c.receive(p, now)
	if !c.echoWanted() || c.echoActive() {
		t.Fatalf("wanted %v active %v", c.echoWanted(), c.echoActive())
	}
	c.setEchoReady(true, now)
	if c.echoInterval() != 100*time.Millisecond || c.echoDetection() != 300*time.Millisecond {
		t.Fatalf("echo interval %v detection %v", c.echoInterval(), c.echoDetection())
	}
	if !c.echoNext.Equal(now) || !c.echoDetectAt.Equal(now.Add(300*time.Millisecond)) {
		t.Fatalf("first echo due %v, detection %v", c.echoNext.Sub(now), c.echoDetectAt.Sub(now))
	}
	if out := c.tick(now); !out.echo {
		t.Fatal("no echo sent")
	}
	// Echo comes back for a while: no change.
	for i := 1; i <= 10; i++ {
		at := now.Add(time.Duration(i) * 80 * time.Millisecond)
		c.echoReceived(at)
		c.receive(p, at)
		if out := c.tick(at); out.changed {
			t.Fatalf("changed %+v", out)
		}
	}
	last := now.Add(800 * time.Millisecond)
	out := c.tick(last.Add(299 * time.Millisecond))
	if out.changed {
		t.Fatal("echo failed early")
	}
	c.receive(p, last.Add(299*time.Millisecond)) // control packets still arrive
	out = c.tick(last.Add(300 * time.Millisecond))
	if !out.changed || out.to != StateDown || out.diag != DiagEchoFailed {
		t.Fatalf("echo expiry: %+v", out)
	}
	if c.echoReady || c.echoActive() || !c.echoNext.IsZero() {
		t.Fatal("echo state not reset after failure")
	}
}

// TestCoreLateTimerReadsBacklogFirst: a detection timer that runs late (the
// process was stopped) does not judge at once; packets that arrived in time,
// handed over during the catch-up with their kernel arrival times, keep the
// session Up. Without them the session goes Down when the catch-up ends.
func TestCoreLateTimerReadsBacklogFirst(t *testing.T) {
	for _, backlog := range []bool{true, false} {
		c := upCore(t, params(300, 300, 3))
		last := t0.Add(time.Second)
		c.receive(remote(StateUp, localID, 300, 300), last)
		det := c.detectionTime() // 900 ms
		thaw := last.Add(det + 400*time.Millisecond)
		if out := c.tick(thaw); out.changed {
			t.Fatalf("late timer judged at once: %+v", out)
		}
		if got, want := c.deadline(), thaw.Add(catchUp); got.After(want) {
			t.Fatalf("next deadline %v after the thaw, want at most %v", got.Sub(thaw), catchUp)
		}
		if backlog {
			// The peer went on sending while we were stopped.
			for at := last.Add(250 * time.Millisecond); at.Before(thaw); at = at.Add(250 * time.Millisecond) {
				if out := c.receiveAt(remote(StateUp, localID, 300, 300), thaw.Add(time.Millisecond), at); out.changed {
					t.Fatalf("backlog packet changed state: %+v", out)
				}
			}
		}
		out := c.tick(thaw.Add(catchUp))
		if backlog && out.changed {
			t.Fatalf("backlog read, yet Down: %+v", out)
		}
		if !backlog && (!out.changed || out.to != StateDown || out.diag != DiagControlDetectionTimeExpired) {
			t.Fatalf("no backlog: want Down on detection time after the catch-up, got %+v", out)
		}
	}
}

// TestCoreBacklogDefersVerdict: while packets come out of the socket long
// after the kernel received them, a timer that runs on time against one of
// them does not judge: newer ones may wait behind it. Packets whose arrival
// times are all too old still end in Down.
func TestCoreBacklogDefersVerdict(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	start := t0.Add(time.Second)
	c.receive(remote(StateUp, localID, 300, 300), start)
	thaw := start.Add(2 * time.Second)
	// The first waiting packet arrived 1.1 s before the thaw: its detection
	// deadline is 200 ms past, and the timer runs right on that deadline.
	old := thaw.Add(-1100 * time.Millisecond)
	c.receiveAt(remote(StateUp, localID, 300, 300), thaw, old)
	due := old.Add(c.detectionTime())
	if out := c.tick(later(due, thaw)); out.changed {
		t.Fatalf("judged with a backlog being read: %+v", out)
	}
	c.receiveAt(remote(StateUp, localID, 300, 300), thaw.Add(time.Millisecond), thaw.Add(-10*time.Millisecond))
	if out := c.tick(thaw.Add(catchUp + time.Millisecond)); out.changed {
		t.Fatalf("fresh packet read, yet Down: %+v", out)
	}
	if c.state != StateUp {
		t.Fatalf("state %s", c.state)
	}
	// A peer silent for longer than the Detection Time before the thaw: the
	// waiting packets are all old, so the session goes Down when the
	// catch-up ends, not a Detection Time later.
	c = upCore(t, params(300, 300, 3))
	c.receive(remote(StateUp, localID, 300, 300), start)
	c.receiveAt(remote(StateUp, localID, 300, 300), thaw, start.Add(300*time.Millisecond))
	if out := c.tick(thaw); out.changed {
		t.Fatalf("judged before the catch-up ended: %+v", out)
	}
	if got := c.deadline(); !got.Equal(thaw.Add(catchUp)) {
		t.Fatalf("verdict due %v after the thaw, want %v", got.Sub(thaw), catchUp)
	}
	out := c.tick(thaw.Add(catchUp))
	if !out.changed || out.to != StateDown {
		t.Fatalf("old backlog only: want Down, got %+v", out)
	}
}

// TestCoreOnTimeTimerJudgesAtOnce: without a backlog or a late timer the
// verdict is not delayed.
func TestCoreOnTimeTimerJudgesAtOnce(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	last := t0.Add(time.Second)
	c.receive(remote(StateUp, localID, 300, 300), last)
	due := last.Add(c.detectionTime())
	if out := c.tick(due.Add(lateTimer)); !out.changed || out.to != StateDown {
		t.Fatalf("timer %v late: want Down at once, got %+v", lateTimer, out)
	}
}

// TestCoreStarvedTimerStillDetects: a process whose every timer runs late
// gets one catch-up per deadline, not one per late tick: a silent peer is
// still detected.
func TestCoreStarvedTimerStillDetects(t *testing.T) {
	c := upCore(t, params(300, 300, 3))
	last := t0.Add(time.Second)
	c.receive(remote(StateUp, localID, 300, 300), last)
	// At most: the deadline, one catch-up, and each of the two ticks late.
	bound := last.Add(c.detectionTime() + catchUp + 2*30*time.Millisecond)
	now := last
	for now.Before(bound.Add(time.Second)) {
		now = later(now, c.deadline()).Add(30 * time.Millisecond) // every tick 30 ms late
		if out := c.tick(now); out.changed {
			if out.to != StateDown || now.After(bound) {
				t.Fatalf("at %v after the last packet: %+v (bound %v)", now.Sub(last), out, bound.Sub(last))
			}
			return
		}
	}
	t.Fatal("a starved session never detected its silent peer")
}
