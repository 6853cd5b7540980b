package bfd

import (
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// holdNet is a transport whose sender can be held inside send, as a real
// send can be descheduled, to see in which order packets reach the wire.
type holdNet struct {
	mu      sync.Mutex
	deliver deliverFunc
	wire    []ControlPacket // in the order sends completed
	hold    chan struct{}   // non-nil: the next send waits until it is closed
	held    chan struct{}   // closed once a send is waiting
}

func (n *holdNet) listen(_ netip.Addr, _ bool, d deliverFunc) (io.Closer, error) {
	n.mu.Lock()
	n.deliver = d
	n.mu.Unlock()
	return memCloser(func() {}), nil
}

func (n *holdNet) dial(netip.Addr, uint16, netip.Addr, bool) (sender, error) {
	return holdSender{n}, nil
}

func (n *holdNet) listenEcho(netip.Addr, func([]byte, netip.Addr)) (io.Closer, error) {
	return memCloser(func() {}), nil
}

func (n *holdNet) dialEcho(netip.Addr, uint16, netip.Addr) (sender, error) { return holdSender{n}, nil }

type holdSender struct{ n *holdNet }

func (s holdSender) send(b []byte) error {
	n := s.n
	n.mu.Lock()
	hold, held := n.hold, n.held
	n.hold = nil
	n.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
	p, err := ParseControlPacket(b)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.wire = append(n.wire, p)
	n.mu.Unlock()
	return nil
}

func (holdSender) Close() error { return nil }

// TestPacketsLeaveInOrder: a periodic packet built while Down and still
// being sent when a received packet takes the session to Init must reach the
// wire before the Init packet. Sent the other way round, the peer sees Init
// then Down, and a peer in Up takes that Down as the session going down.
func TestPacketsLeaveInOrder(t *testing.T) {
	n := &holdNet{}
	m := NewManager(func(o *managerOptions) { o.transport = n })
	defer m.Close()
	key := PeerKey{Local: netip.MustParseAddr("10.99.0.1"), Peer: netip.MustParseAddr("10.99.0.2")}
	if err := m.AddPeer(key, DefaultProfile()); err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.wire = nil
	n.hold, n.held = make(chan struct{}), make(chan struct{})
	hold, held := n.hold, n.held
	deliver := n.deliver
	n.mu.Unlock()
	// The next periodic transmission (Down, once a second) is held in send.
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("no periodic packet within 5 s")
	}
	// Meanwhile the peer's Down arrives: Down -> Init, answered at once.
	peer := ControlPacket{Version: Version, State: StateDown, DetectMult: 3, MyDiscriminator: 77,
		DesiredMinTxInterval: 1000000, RequiredMinRxInterval: 1000000}
	deliver(peer.Marshal(), key.Peer, SingleHopTTL, 0)
	close(hold)
	var states []State
	deadline := time.Now().Add(5 * time.Second)
	for {
		n.mu.Lock()
		states = states[:0]
		for _, p := range n.wire {
			states = append(states, p.State)
		}
		n.mu.Unlock()
		if len(states) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if len(states) < 2 || states[0] != StateDown || states[len(states)-1] != StateInit {
		t.Fatalf("packets on the wire in state order %v, want the held Down first and Init last", states)
	}
}
