package heartbeat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// forgetAfter: a node silent this long is dropped from the receive state
// (its echo and sequence); coming back it is accepted as new.
const forgetAfter = time.Minute

// sendLoop sends a round at once and then every Interval until ctx ends.
//
// Each peer address gets its own socket. With one socket for all,
// the datagrams the kernel holds for absent peers while it tries to resolve
// their MACs (up to 3 s of them each) are charged to that socket's send
// buffer, and a few dozen absent peers fill it: the live peers' heartbeats
// then wait or fail, and the live nodes look dead
// (TestNamespaceAbsentAndFrozenPeers, which fails with a shared socket). A
// write never waits either: a datagram that does not fit is dropped and
// counted. The sockets are not connected: a connected one would report an
// ICMP port unreachable (a node whose speaker is not running yet) by failing
// the next send, and would keep the source address chosen when it was
// connected.
func (h *Heartbeat) sendLoop(ctx context.Context, r *round) {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	s := &sendState{socks: map[Peer]*peerSocket{}, failing: map[Peer]string{}}
	defer s.closeAll()
	for {
		h.sendRound(r, s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sendState is the send loop's own: the peers' sockets, the peers whose
// last send failed (with the error, to log changes only), a buffer.
type sendState struct {
	socks   map[Peer]*peerSocket
	failing map[Peer]string
	buf     []byte
}

// peerSocket sends to one peer address.
type peerSocket struct {
	conn *net.UDPConn
	to   unix.Sockaddr
}

func (s *sendState) close(p Peer) {
	if c, ok := s.socks[p]; ok {
		_ = c.conn.Close()
		delete(s.socks, p)
	}
}

func (s *sendState) closeAll() {
	for p := range s.socks {
		s.close(p)
	}
}

// outgoing is one datagram of a round, built under the lock.
type outgoing struct {
	peer Peer
	msg  message
}

func (h *Heartbeat) sendRound(r *round, s *sendState) {
	h.mu.Lock()
	r.seq++
	now := h.now()
	h.sends.sent(r.seq, now)
	h.senders.forget(now.Add(-forgetAfter))
	out := make([]outgoing, len(h.peers))
	for i, p := range h.peers {
		echo, hold := h.senders.echo(p.Node, now)
		out[i] = outgoing{p, message{Node: h.cfg.Node, Incarnation: r.incarnation, Seq: r.seq, EchoSeq: echo, EchoHold: hold,
			Renewing: h.renewing.Load()}}
	}
	h.mu.Unlock()

	current := make(map[Peer]bool, len(out))
	for _, o := range out {
		current[o.peer] = true
		s.buf = appendMessage(s.buf[:0], o.msg, h.cfg.Key)
		err := h.sendTo(s, o.peer, s.buf)
		if err != nil {
			// Opened afresh next round (level-triggered: whatever state
			// the old socket was in, a new one starts clean).
			s.close(o.peer)
			h.m.sendErrors.Inc()
			if msg := err.Error(); s.failing[o.peer] != msg {
				s.failing[o.peer] = msg
				h.log.Warn("heartbeat: send failed", "node", o.peer.Node, "addr", o.peer.Addr, "err", err)
			}
			continue
		}
		h.m.sent.Inc()
		if _, ok := s.failing[o.peer]; ok {
			delete(s.failing, o.peer)
			h.log.Info("heartbeat: sending again", "node", o.peer.Node, "addr", o.peer.Addr)
		}
	}
	for p := range s.socks {
		if !current[p] {
			s.close(p)
		}
	}
	for p := range s.failing {
		if !current[p] {
			delete(s.failing, p)
		}
	}
}

// sendTo sends b to p on p's socket, opened if need be, without waiting
// for room in its buffer.
func (h *Heartbeat) sendTo(s *sendState, p Peer, b []byte) error {
	ps, ok := s.socks[p]
	if !ok {
		var err error
		if ps, err = h.openPeer(p.Addr); err != nil {
			return err
		}
		s.socks[p] = ps
	}
	rc, err := ps.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("heartbeat: send to %v: %w", p.Addr, err)
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Sendto(int(fd), b, 0, ps.to)
		return true // never wait: a full buffer drops this datagram (EAGAIN)
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("heartbeat: send to %v: %w", p.Addr, err)
	}
	return nil
}

// openPeer opens a socket for sending to addr's heartbeat port, bound to
// Listen when set (SetPeers dropped the peers of the other family), else to
// any address; the kernel picks the source per datagram.
func (h *Heartbeat) openPeer(addr netip.Addr) (*peerSocket, error) {
	ps := &peerSocket{}
	network := "udp6"
	if addr.Is4() {
		network = "udp4"
		ps.to = &unix.SockaddrInet4{Port: h.cfg.Port, Addr: addr.As4()}
	}
	laddr := &net.UDPAddr{}
	if h.cfg.Listen.IsValid() {
		laddr = &net.UDPAddr{IP: h.cfg.Listen.AsSlice(), Zone: h.cfg.Listen.Zone()}
	}
	err := h.enter(func() (err error) {
		if addr.Is6() {
			to := &unix.SockaddrInet6{Port: h.cfg.Port, Addr: addr.As16()}
			if z := addr.Zone(); z != "" { // a link-local peer: the zone is an interface
				ifi, err := net.InterfaceByName(z)
				if err != nil {
					return err
				}
				to.ZoneId = uint32(ifi.Index)
			}
			ps.to = to
		}
		ps.conn, err = net.ListenUDP(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat: socket to %v: %w", addr, err)
	}
	return ps, nil
}
