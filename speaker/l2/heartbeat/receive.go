package heartbeat

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// receive reads datagrams until the socket fails or is closed, and reports
// the valid ones from other nodes to heard.
func (h *Heartbeat) receive(conn *net.UDPConn, heard func(string, time.Time)) error {
	// One byte more than the largest valid datagram: a longer one arrives
	// truncated to this size and is still seen as too long.
	buf := make([]byte, maxDatagram+1)
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return fmt.Errorf("heartbeat: read: %w", err)
		}
		at := h.now() // on receipt, on our clock: the sender's clock never counts
		m, echoed, ok := h.accept(buf[:n], at)
		if ok {
			heard(m.Node, at)
			if !echoed.IsZero() && h.cfg.Echoed != nil {
				h.cfg.Echoed(m.Node, echoed)
			}
			if h.cfg.PeerState != nil {
				h.cfg.PeerState(m.Node, m.Renewing, at)
			}
		}
	}
}

// accept decodes b, received at at, and updates the receive state; it
// returns the message when the datagram is valid, new, and another node's,
// and the send time of the round of ours it echoes (zero: none recent).
func (h *Heartbeat) accept(b []byte, at time.Time) (message, time.Time, bool) {
	m, err := decode(b, h.cfg.Key)
	if err != nil {
		var de *dropError
		if errors.As(err, &de) {
			h.m.dropped.WithLabelValues(de.reason).Inc()
		}
		return message{}, time.Time{}, false
	}
	if m.Node == h.cfg.Node {
		// Our own datagram (a peer list naming one of our addresses under
		// another name), or another node misconfigured with our name.
		h.m.dropped.WithLabelValues(reasonOwnName).Inc()
		return message{}, time.Time{}, false
	}
	h.mu.Lock()
	fresh := h.senders.accept(m, at)
	rtt, rttOK := h.sends.rtt(m.EchoSeq, m.EchoHold, at)
	echoed, _ := h.sends.sentAt(m.EchoSeq)
	h.mu.Unlock()
	if !fresh {
		h.m.dropped.WithLabelValues(reasonStale).Inc()
		return message{}, time.Time{}, false
	}
	h.m.received.Inc()
	if rttOK {
		h.m.rtt.Observe(rtt.Seconds())
	}
	return m, echoed, true
}
