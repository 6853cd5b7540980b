package bfd

import (
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"
)

// MemNet is an in-memory network for Manager tests: delivery is synchronous,
// so with a fake clock every run is deterministic.
type MemNet struct {
	mu        sync.Mutex
	listeners map[listenKey]deliverFunc
	echoes    map[netip.Addr]func([]byte, netip.Addr)
	// EchoBlocked makes the peer stop returning echo packets sent through it
	// (its forwarding plane failed while its BFD keeps running).
	EchoBlocked map[netip.Addr]bool
	// EchoSent counts echo packets by sender.
	EchoSent map[netip.Addr]int
	// TTL is reported to receivers (255 unless a test changes it);
	// MultiHopTTL, when set, to receivers of multi-hop packets.
	TTL, MultiHopTTL int
	// Drop, when set, discards packets it returns true for.
	Drop func(src, dst netip.Addr, p ControlPacket) bool
	// Sent counts packets by source address; Last records when the clock
	// (if set) last saw a packet from each source.
	Sent  map[netip.Addr]int
	Last  map[netip.Addr]time.Time
	Clock Clock
}

// NewMemNet returns an empty network.
func NewMemNet(clock Clock) *MemNet {
	return &MemNet{listeners: map[listenKey]deliverFunc{}, TTL: 255,
		echoes: map[netip.Addr]func([]byte, netip.Addr){}, EchoBlocked: map[netip.Addr]bool{}, EchoSent: map[netip.Addr]int{},
		Sent: map[netip.Addr]int{}, Last: map[netip.Addr]time.Time{}, Clock: clock}
}

// WithMemNet runs a Manager over n instead of UDP.
func WithMemNet(n *MemNet) Option { return func(o *managerOptions) { o.transport = n } }

type memCloser func()

func (c memCloser) Close() error { c(); return nil }

func (n *MemNet) listen(local netip.Addr, multiHop bool, deliver deliverFunc) (io.Closer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lk := listenKey{addr: local, multiHop: multiHop}
	if _, ok := n.listeners[lk]; ok {
		return nil, errors.New("address in use")
	}
	n.listeners[lk] = deliver
	return memCloser(func() {
		n.mu.Lock()
		delete(n.listeners, lk)
		n.mu.Unlock()
	}), nil
}

type memSender struct {
	n           *MemNet
	local, peer netip.Addr
	multiHop    bool
}

func (s memSender) send(b []byte) error {
	n := s.n
	p, _ := ParseControlPacket(b)
	n.mu.Lock()
	n.Sent[s.local]++
	if n.Clock != nil {
		n.Last[s.local] = n.Clock.Now()
	}
	deliver := n.listeners[listenKey{addr: s.peer, multiHop: s.multiHop}]
	drop := n.Drop != nil && n.Drop(s.local, s.peer, p)
	ttl := n.TTL
	if s.multiHop && n.MultiHopTTL != 0 {
		ttl = n.MultiHopTTL
	}
	n.mu.Unlock()
	if deliver != nil && !drop {
		deliver(b, s.local, ttl, 0)
	}
	return nil
}

func (s memSender) Close() error { return nil }

func (n *MemNet) dial(local netip.Addr, _ uint16, peer netip.Addr, multiHop bool) (sender, error) {
	return memSender{n: n, local: local, peer: peer, multiHop: multiHop}, nil
}

// LastFrom returns when src last sent a packet.
func (n *MemNet) LastFrom(src netip.Addr) time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.Last[src]
}

func (n *MemNet) listenEcho(local netip.Addr, deliver func([]byte, netip.Addr)) (io.Closer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.echoes[local] = deliver
	return memCloser(func() {
		n.mu.Lock()
		delete(n.echoes, local)
		n.mu.Unlock()
	}), nil
}

type memEcho struct {
	n           *MemNet
	local, peer netip.Addr
}

// send "reflects" the packet through the peer: it comes back to local unless
// the peer is gone or blocks echo.
func (e memEcho) send(b []byte) error {
	n := e.n
	n.mu.Lock()
	n.EchoSent[e.local]++
	_, peerAlive := n.listeners[listenKey{addr: e.peer}]
	deliver := n.echoes[e.local]
	blocked := n.EchoBlocked[e.peer]
	n.mu.Unlock()
	if deliver != nil && peerAlive && !blocked {
		deliver(b, e.local)
	}
	return nil
}

func (e memEcho) Close() error { return nil }

// echoResolvesInline: listenEcho and dialEcho above never block.
func (n *MemNet) echoResolvesInline() {}

func (n *MemNet) dialEcho(local netip.Addr, _ uint16, peer netip.Addr) (sender, error) {
	return memEcho{n: n, local: local, peer: peer}, nil
}

// SetEchoBlocked sets EchoBlocked for peer under the lock.
func (n *MemNet) SetEchoBlocked(peer netip.Addr, blocked bool) {
	n.mu.Lock()
	n.EchoBlocked[peer] = blocked
	n.mu.Unlock()
}

// EchoCount returns how many echo packets src sent.
func (n *MemNet) EchoCount(src netip.Addr) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.EchoSent[src]
}
