package bfd

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// session is the imperative shell around one core: a lock, a timer and a
// send socket.
type session struct {
	m       *Manager
	key     PeerKey
	port    uint16
	tx      sender
	metrics sessionMetrics
	timer   Timer

	mu         sync.Mutex
	core       *core
	profile    Profile
	closed     bool
	muted      bool
	lastChange time.Time
	in, out    uint64
	buf        []byte
	// Packets leave in the order the core produced them: steps append to
	// outq under mu, and one goroutine at a time (sending) sends what is
	// queued, outside mu. Sent in parallel, a packet computed before a state
	// change could follow one computed after it, and the peer would act on
	// the stale state (a Down after our Init takes it down again).
	outq    [][]byte
	sending bool
	idle    *sync.Cond // signalled when sending ends

	echoTx        sender // nil until the echo path is resolved
	echoResolving bool
	echoRetry     time.Time // earliest next attempt to resolve the echo path
	echoSeq       uint64
	echoCount     uint64

	upEvents, downEvents uint64 // transitions into and out of Up
}

// step runs f on the core under the lock, reports its effects, re-arms the
// timer and then sends the packets outside the lock (so an in-memory
// transport may deliver synchronously), in order (see outq).
func (s *session) step(f func(now time.Time) output) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	now := s.m.clock.Now()
	out := f(now)
	s.report(out, now)
	s.rearm(now)
	pkts := s.encode(out)
	var echo []byte
	if out.echo && s.echoTx != nil && !s.muted {
		s.echoSeq++
		echo = echoPayload(s.core.localDiscr, s.echoSeq)
	}
	echoTx := s.echoTx
	var stale sender
	if !s.core.echoReady && s.echoTx != nil {
		stale, s.echoTx = s.echoTx, nil // echo failed or was turned off: resolve afresh
	}
	resolve := s.core.echoWanted() && !s.core.echoReady && !s.echoResolving && !now.Before(s.echoRetry)
	if resolve {
		s.echoResolving = true
	}
	s.outq = append(s.outq, pkts...)
	s.mu.Unlock()
	s.flush()
	if echo != nil {
		if err := echoTx.send(echo); err != nil {
			s.m.log.Debug("bfd echo send", "local", s.key.Local, "peer", s.key.Peer, "err", err)
		}
	}
	if stale != nil {
		stale.Close()
	}
	if resolve {
		if _, inline := s.m.tr.(inlineEcho); inline {
			s.resolveEcho()
		} else {
			go s.resolveEcho()
		}
	}
}

// resolveEcho opens the echo listener and sender (which needs the peer's
// link-layer address) off the session lock, then starts the echo function.
func (s *session) resolveEcho() {
	err := s.m.echoListener(s.key.Local)
	var tx sender
	if err == nil {
		tx, err = s.m.tr.dialEcho(s.key.Local, s.port, s.key.Peer)
	}
	s.mu.Lock()
	s.echoResolving = false
	if err != nil || s.closed {
		if err != nil {
			s.m.log.Debug("bfd echo unavailable", "local", s.key.Local, "peer", s.key.Peer, "err", err)
			s.echoRetry = s.m.clock.Now().Add(time.Second)
		}
		s.mu.Unlock()
		if tx != nil {
			tx.Close()
		}
		return
	}
	s.echoTx = tx
	s.mu.Unlock()
	s.step(func(now time.Time) output {
		s.core.setEchoReady(true, now)
		return s.core.tick(now)
	})
}

func (s *session) echoIn() {
	s.step(func(now time.Time) output {
		s.echoCount++
		s.core.echoReceived(now)
		return output{}
	})
}

func (s *session) report(out output, now time.Time) {
	if !out.changed {
		return
	}
	s.lastChange = now
	switch {
	case out.to == StateUp:
		s.metrics.up.Set(1)
		s.metrics.upTrans.Inc()
		s.upEvents++
	case out.from == StateUp:
		s.metrics.up.Set(0)
		s.metrics.downs.Inc()
		s.downEvents++
	}
	level := slog.LevelInfo
	if out.from == StateUp {
		level = slog.LevelWarn
	}
	s.m.log.Log(context.Background(), level, "bfd session state change", "local", s.key.Local, "peer", s.key.Peer,
		"from", out.from.String(), "to", out.to.String(), "diag", out.diag.String())
	s.m.publish(StateChange{Key: s.key, Old: out.from, New: out.to, Diag: out.diag,
		RemoteState: out.remoteState, RemoteDiag: out.remoteDiag, At: now})
}

func (s *session) rearm(now time.Time) {
	d := s.core.deadline()
	if d.IsZero() {
		s.timer.Stop()
		return
	}
	s.timer.Reset(max(d.Sub(now), 0))
}

// encode marshals the packets to send (none while muted) into one buffer.
func (s *session) encode(out output) [][]byte {
	if len(out.packets) == 0 || s.muted {
		return nil
	}
	pkts := make([][]byte, 0, len(out.packets))
	for i := range out.packets {
		start := len(s.buf)
		s.buf = out.packets[i].AppendTo(s.buf)
		pkts = append(pkts, s.buf[start:len(s.buf):len(s.buf)])
	}
	s.buf = nil // the slices above own the bytes now
	s.out += uint64(len(pkts))
	return pkts
}

// flush sends the queued packets unless another goroutine is sending them
// (it sends what was queued meanwhile before it stops).
func (s *session) flush() {
	s.mu.Lock()
	if s.sending {
		s.mu.Unlock()
		return
	}
	s.sending = true
	for len(s.outq) > 0 {
		q := s.outq
		s.outq = nil
		s.mu.Unlock()
		s.send(q)
		s.mu.Lock()
	}
	s.sending = false
	s.idle.Broadcast()
	s.mu.Unlock()
}

func (s *session) send(pkts [][]byte) {
	for _, b := range pkts {
		if err := s.tx.send(b); err != nil {
			s.m.log.Debug("bfd send", "local", s.key.Local, "peer", s.key.Peer, "err", err)
			continue
		}
		s.metrics.tx.Inc()
	}
}

func (s *session) onTimer() {
	s.step(func(now time.Time) output { return s.core.tick(now) })
}

// receive handles a packet that arrived age ago (it waited in the socket)
// with TTL ttl; a multi-hop session drops one below its minimum TTL.
func (s *session) receive(p ControlPacket, ttl int, age time.Duration) {
	s.step(func(now time.Time) output {
		if s.key.MultiHop && ttl < int(s.profile.MinimumTTL) {
			s.m.metrics.dropped.WithLabelValues(s.key.Local.String(), "ttl").Inc()
			return output{}
		}
		out := s.core.receiveAt(p, now, now.Add(-age))
		if !out.discard {
			s.in++
			s.metrics.rx.Inc()
		}
		return out
	})
}

// stop sends AdminDown, reports the transition and closes the socket.
func (s *session) stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	now := s.m.clock.Now()
	out := s.core.adminDown(now)
	s.report(out, now)
	s.timer.Stop()
	s.outq = append(s.outq, s.encode(out)...)
	s.closed = true
	for s.sending { // the AdminDown goes after what is being sent, not lost to the Close
		s.idle.Wait()
	}
	s.mu.Unlock()
	s.flush()
	if err := s.tx.Close(); err != nil {
		s.m.log.Debug("close bfd socket", "local", s.key.Local, "peer", s.key.Peer, "err", err)
	}
	s.mu.Lock()
	echoTx := s.echoTx
	s.echoTx = nil
	s.mu.Unlock()
	if echoTx != nil {
		echoTx.Close()
	}
}

func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.core
	info := SessionInfo{
		Key:           s.key,
		State:         c.state,
		RemoteState:   c.remoteState,
		LocalDiag:     c.localDiag,
		RemoteDiag:    c.remoteDiag,
		LocalDiscr:    c.localDiscr,
		RemoteDiscr:   c.remoteDiscr,
		TxInterval:    c.txInterval(),
		Profile:       s.profile,
		LastChange:    s.lastChange,
		PacketsIn:     s.in,
		PacketsOut:    s.out,
		Muted:         s.muted,
		EchoActive:    c.echoActive(),
		EchoPacketsIn: s.echoCount,
		// Every echo packet built is handed to the sender (a failed send is
		// logged), as PacketsOut counts control packets.
		EchoPacketsOut: s.echoSeq,
		UpEvents:       s.upEvents,
		DownEvents:     s.downEvents,
	}
	if !c.lastRx.IsZero() {
		info.DetectionTime = c.detectionTime()
	}
	return info
}
