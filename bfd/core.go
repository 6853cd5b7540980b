package bfd

import "time"

// sessionParams are the timing values a session advertises (RFC 5880 units:
// microseconds).
type sessionParams struct {
	DesiredMinTx  uint32
	RequiredMinRx uint32
	DetectMult    uint8
}

// core is one session's RFC 5880 section 6.8.1 state plus its schedule. It is
// the functional core of a session: it never reads a clock, never sleeps and
// never touches a socket. Every method takes the current time and returns
// what the shell must do (packets to send, a state change to report); the
// shell then arms one timer for deadline().
type core struct {
	state       State
	remoteState State
	localDiscr  uint32
	remoteDiscr uint32
	localDiag   Diagnostic
	remoteDiag  Diagnostic

	// Values from the last packet received (bfd.RemoteMinRxInterval and friends).
	remoteMinRx     uint32
	remoteDesiredTx uint32
	remoteMult      uint8
	remoteDemand    bool

	passive bool
	// cfg is what the profile asks for; adv is what our packets carry (the
	// values of the running Poll Sequence, or cfg with the 1 s floor applied
	// while not Up). effTx/effRx are the values actually used for our
	// transmit interval and for the detection time: during a Poll Sequence
	// they keep the old value where RFC 5880 section 6.8.3 requires it.
	cfg     sessionParams
	adv     sessionParams
	effTx   uint32
	effRx   uint32
	polling bool

	// Echo function (RFC 5880 section 6.4, RFC 5881 section 4): echoIv is our
	// echo interval (0: echo mode off); it is also what we advertise as
	// Required Min Echo RX, since our kernel forwards the peer's echo packets.
	// echoReady is set by the shell once it can send echo packets.
	echoIv       uint32
	remoteEchoRx uint32
	echoReady    bool
	echoNext     time.Time
	echoDetectAt time.Time

	lastRx   time.Time // zero: nothing received within a Detection Time
	detectAt time.Time // zero: detection timer not armed
	// catchUpUntil: no detection verdict before then (see lateTimer).
	catchUpUntil time.Time
	nextTx       time.Time     // zero: no periodic transmission scheduled
	txSched      time.Duration // the un-jittered interval nextTx was derived from
	rng          uint64
}

// A detection timer that runs more than lateTimer after it fell due, or a
// packet handed over more than lateTimer after the kernel received it, means
// this process was not running for a while (stopped, descheduled, starved):
// packets that arrived in time may still wait unread in the socket. The
// verdict then waits until catchUp after the last such sign, so the receive
// path can hand them over with their kernel arrival times, and is taken on
// those times. A timer that runs on time, with no backlog, is judged at once:
// a peer that really fell silent is detected as before.
const (
	lateTimer = 10 * time.Millisecond
	catchUp   = 50 * time.Millisecond
)

// output is what one core step asks of the shell.
type output struct {
	packets  []ControlPacket // to send now, in order
	echo     bool            // send one echo packet now
	changed  bool            // a state transition happened
	from, to State
	diag     Diagnostic // local diagnostic after the transition
	// remoteState and remoteDiag are what the peer's last packet said when the
	// transition happened (Down and the last diagnostic after a detection timeout).
	remoteState State
	remoteDiag  Diagnostic
	discard     bool // the received packet was discarded (session-level checks)
}

func newCore(localDiscr uint32, cfg sessionParams, passive bool, seed uint64, now time.Time) *core {
	if seed == 0 {
		seed = 0x9e3779b97f4a7c15
	}
	c := &core{
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  localDiscr,
		remoteMinRx: 1, // RFC 5880 section 6.8.1: initialised to 1
		passive:     passive,
		cfg:         cfg,
		rng:         seed,
	}
	var out output
	c.reconcile(&out)
	c.reschedule(now)
	return c
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// wanted returns the values to advertise for cfg in state s: Desired Min TX
// is at least one second while the session is not Up (RFC 5880 section 6.8.3).
func wanted(cfg sessionParams, s State) sessionParams {
	if s != StateUp {
		cfg.DesiredMinTx = max(cfg.DesiredMinTx, slowTxInterval)
	}
	return cfg
}

// reconcile brings the advertised and effective values in line with cfg and
// the state. While Up, a change starts a Poll Sequence: a faster transmit
// rate and a longer detection time apply at once, a slower transmit rate and
// a shorter detection time only once the Final arrives (RFC 5880 section
// 6.8.3). While not Up every change applies at once.
func (c *core) reconcile(out *output) {
	w := wanted(c.cfg, c.state)
	if c.state != StateUp {
		c.polling = false
		c.adv, c.effTx, c.effRx = w, w.DesiredMinTx, w.RequiredMinRx
		return
	}
	if c.polling || w == c.adv {
		return // a change during a Poll Sequence waits for the next one
	}
	c.polling = true
	c.effTx = min(c.effTx, w.DesiredMinTx)
	c.effRx = max(c.effRx, w.RequiredMinRx)
	c.adv = w
	out.packets = append(out.packets, c.packet(false))
}

// finishPoll ends a Poll Sequence when a Final arrives and commits its values.
func (c *core) finishPoll(out *output) {
	if !c.polling {
		return
	}
	c.polling = false
	c.effTx, c.effRx = c.adv.DesiredMinTx, c.adv.RequiredMinRx
	c.reconcile(out) // start the next Poll if cfg changed meanwhile
}

// packet builds the control packet we send now.
func (c *core) packet(final bool) ControlPacket {
	return ControlPacket{
		Version:                   Version,
		Diag:                      c.localDiag,
		State:                     c.state,
		Poll:                      c.polling && !final,
		Final:                     final,
		DetectMult:                c.adv.DetectMult,
		MyDiscriminator:           c.localDiscr,
		YourDiscriminator:         c.remoteDiscr,
		DesiredMinTxInterval:      c.adv.DesiredMinTx,
		RequiredMinRxInterval:     c.adv.RequiredMinRx,
		RequiredMinEchoRxInterval: c.echoIv,
	}
}

func (c *core) setState(next State, diag Diagnostic, out *output) {
	out.changed = true
	out.from, out.to = c.state, next
	c.state = next
	c.localDiag = diag
	out.diag = diag
	out.remoteState, out.remoteDiag = c.remoteState, c.remoteDiag
}

// canTransmit reports whether periodic transmission is allowed (RFC 5880
// sections 6.1 passive role, 6.8.7 zero Required Min RX and Demand mode).
func (c *core) canTransmit() bool {
	if c.passive && c.remoteDiscr == 0 {
		return false
	}
	if c.remoteMinRx == 0 {
		return false
	}
	if c.remoteDemand && c.state == StateUp && c.remoteState == StateUp {
		return false
	}
	return true
}

// txInterval is the negotiated interval before jitter.
func (c *core) txInterval() time.Duration { return TxInterval(c.effTx, c.remoteMinRx) }

// detectionTime is the current Detection Time (zero before any packet).
func (c *core) detectionTime() time.Duration {
	return DetectionTime(c.remoteMult, c.effRx, c.remoteDesiredTx)
}

// random returns a uniform number in [0, 1) from a xorshift64* generator,
// so the core stays deterministic for a given seed.
func (c *core) random() float64 {
	c.rng ^= c.rng >> 12
	c.rng ^= c.rng << 25
	c.rng ^= c.rng >> 27
	return float64((c.rng*2685821657736338717)>>11) / (1 << 53)
}

func (c *core) jittered() time.Duration {
	return Jitter(c.txInterval(), c.adv.DetectMult, c.random())
}

// echoWanted reports whether the echo function should run (the shell then
// makes echo sending possible and calls setEchoReady).
func (c *core) echoWanted() bool {
	return c.echoIv != 0 && c.state == StateUp && c.remoteEchoRx != 0
}

// echoActive reports whether echo packets are being sent and timed.
func (c *core) echoActive() bool { return c.echoReady && c.echoWanted() }

// echoInterval is the echo transmit interval before jitter: never faster than
// the peer's Required Min Echo RX.
func (c *core) echoInterval() time.Duration { return usec(max(c.echoIv, c.remoteEchoRx)) }

// echoDetection is the echo Detection Time: our Detect Mult times the echo
// interval (the packets are ours, so our multiplier applies).
func (c *core) echoDetection() time.Duration {
	return time.Duration(c.adv.DetectMult) * c.echoInterval()
}

// setEchoReady tells the core whether the shell can send echo packets.
func (c *core) setEchoReady(ready bool, now time.Time) {
	c.echoReady = ready
	c.reschedule(now)
}

// echoReceived restarts the echo detection timer when one of our echo
// packets comes back.
func (c *core) echoReceived(now time.Time) {
	if c.echoActive() {
		c.echoDetectAt = now.Add(c.echoDetection())
	}
}

// reschedule re-derives the deadlines after any change.
func (c *core) reschedule(now time.Time) {
	if !c.echoActive() {
		c.echoNext, c.echoDetectAt = time.Time{}, time.Time{}
	} else {
		if c.echoNext.IsZero() {
			c.echoNext = now
		}
		if c.echoDetectAt.IsZero() {
			c.echoDetectAt = now.Add(c.echoDetection())
		}
	}
	if c.lastRx.IsZero() {
		c.detectAt = time.Time{}
	} else {
		c.detectAt = c.lastRx.Add(c.detectionTime())
	}
	switch {
	case !c.canTransmit():
		c.nextTx = time.Time{}
	case c.nextTx.IsZero():
		c.nextTx = now // first packet (or first after a pause) goes out at once
	default:
		// A shorter interval takes effect now rather than after the old one.
		if iv := c.txInterval(); iv < c.txSched {
			c.txSched = iv
			if soonest := now.Add(c.jittered()); soonest.Before(c.nextTx) {
				c.nextTx = soonest
			}
		}
	}
}

// detectionDue is when the detection timer is judged: the Detection Time
// after the last packet, but not before a catch-up ends; zero: not armed.
func (c *core) detectionDue() time.Time {
	if c.detectAt.IsZero() || !c.detectAt.Before(c.catchUpUntil) {
		return c.detectAt
	}
	return c.catchUpUntil
}

// deadline is when the shell must call tick next; zero means never.
func (c *core) deadline() time.Time {
	var d time.Time
	for _, t := range [...]time.Time{c.nextTx, c.detectionDue(), c.echoNext, c.echoDetectAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// receive processes a packet that passed ParseControlPacket and was
// demultiplexed to this session (RFC 5880 section 6.8.6, from "If the Your
// Discriminator field is nonzero" on), received now.
func (c *core) receive(p ControlPacket, now time.Time) output { return c.receiveAt(p, now, now) }

// receiveAt is receive for a packet that arrived at rxAt (its kernel arrival
// time; now or earlier): the Detection Time counts from there.
func (c *core) receiveAt(p ControlPacket, now, rxAt time.Time) output {
	var out output
	if p.YourDiscriminator != 0 && p.YourDiscriminator != c.localDiscr {
		out.discard = true
		return out
	}
	c.remoteDiscr = p.MyDiscriminator
	c.remoteState = p.State
	c.remoteDiag = p.Diag
	c.remoteDemand = p.Demand
	c.remoteMinRx = p.RequiredMinRxInterval
	c.remoteDesiredTx = p.DesiredMinTxInterval
	c.remoteMult = p.DetectMult
	c.remoteEchoRx = p.RequiredMinEchoRxInterval
	if p.Final {
		c.finishPoll(&out)
	}
	if c.state == StateAdminDown {
		c.reschedule(now)
		out.discard = true
		return out
	}
	if next, diag := Transition(c.state, RecvEvent(p.State)); next != c.state {
		c.setState(next, diag, &out)
		c.reconcile(&out)
		if len(out.packets) == 0 {
			// Tell the peer at once rather than a (slow) interval later.
			out.packets = append(out.packets, c.packet(false))
		}
	}
	if rxAt.After(now) {
		rxAt = now
	}
	if now.Sub(rxAt) > lateTimer {
		// Packets wait in the socket (the process was not running): more
		// may follow, newer. No verdict before they are read.
		c.catchUpUntil = later(c.catchUpUntil, now.Add(catchUp))
	}
	if rxAt.After(c.lastRx) {
		c.lastRx = rxAt
	}
	if p.Poll {
		// Answer a Poll at once, regardless of the transmit timer (6.8.7).
		// A Final also carries any parameter change we just made.
		out.packets = append(out.packets[:0], c.packet(true))
	}
	c.reschedule(now)
	return out
}

// tick runs the timers that are due at now.
func (c *core) tick(now time.Time) output {
	var out output
	if due := c.detectionDue(); !due.IsZero() && !now.Before(due) {
		switch {
		case now.Sub(due) > lateTimer && !c.catchUpUntil.After(c.detectAt):
			// The timer ran late: read what waits in the socket first.
			// Once per deadline: a process whose every timer runs late
			// (starved for good) must still detect a silent peer.
			c.catchUpUntil = now.Add(catchUp)
		default:
			c.catchUpUntil = time.Time{}
			c.expire(&out)
		}
	}
	if !c.echoDetectAt.IsZero() && !now.Before(c.echoDetectAt) && c.echoActive() {
		c.echoFailed(&out)
	}
	if !c.echoNext.IsZero() && !now.Before(c.echoNext) && c.echoActive() {
		out.echo = true
		c.echoNext = now.Add(Jitter(c.echoInterval(), c.adv.DetectMult, c.random()))
	}
	if !c.nextTx.IsZero() && !now.Before(c.nextTx) && c.canTransmit() {
		out.packets = append(out.packets, c.packet(false))
		c.txSched = c.txInterval()
		c.nextTx = now.Add(c.jittered())
	}
	c.reschedule(now)
	return out
}

// expire handles the Detection Time passing without a packet (6.8.4, 6.8.1).
func (c *core) expire(out *output) {
	c.lastRx = time.Time{}
	c.remoteDiscr = 0
	c.remoteState = StateDown
	if next, diag := Transition(c.state, EventDetectTimeout); next != c.state {
		c.setState(next, diag, out)
		c.reconcile(out)
		if len(out.packets) == 0 {
			out.packets = append(out.packets, c.packet(false))
		}
	}
}

// echoFailed handles echo packets no longer coming back (6.8.5). The echo
// path is reset, so the shell looks up the peer again before the next use.
func (c *core) echoFailed(out *output) {
	c.echoReady = false
	if next, diag := Transition(c.state, EventEchoTimeout); next != c.state {
		c.setState(next, diag, out)
		c.reconcile(out)
		if len(out.packets) == 0 {
			out.packets = append(out.packets, c.packet(false))
		}
	}
}

// configure applies a new profile (6.8.3: Poll Sequence when Up). echoIv is
// the echo interval in microseconds, 0 when echo mode is off.
func (c *core) configure(cfg sessionParams, passive bool, echoIv uint32, now time.Time) output {
	var out output
	c.cfg = cfg
	c.passive = passive
	if c.echoIv != echoIv {
		c.echoIv = echoIv
		c.echoNext, c.echoDetectAt = time.Time{}, time.Time{}
	}
	c.reconcile(&out)
	c.reschedule(now)
	return out
}

// adminDown takes the session administratively down (6.8.16) and returns
// the AdminDown packet to tell the peer.
func (c *core) adminDown(now time.Time) output {
	var out output
	if next, diag := Transition(c.state, EventAdminDown); next != c.state {
		c.setState(next, diag, &out)
		c.reconcile(&out)
	}
	out.packets = append(out.packets[:0], c.packet(false))
	c.reschedule(now)
	return out
}
