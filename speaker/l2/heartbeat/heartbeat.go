package heartbeat

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Peer is a node to send heartbeats to, at its InternalIP (IPv4 or IPv6).
// A node with two InternalIPs may be given twice: it then gets one datagram
// on each per Interval.
type Peer struct {
	Node string
	Addr netip.Addr
}

// Backoff bounds of the socket retry loop.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Heartbeat sends this node's heartbeat to its peers and reports the ones it
// receives. Create it with New.
type Heartbeat struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	// Seams for tests: the clock that stamps receipts, where sockets are
	// created (enter runs f there; tests: inside a network namespace) and
	// the retry bounds.
	now                    func() time.Time
	enter                  func(f func() error) error
	minBackoff, maxBackoff time.Duration

	receiving atomic.Bool
	renewing  atomic.Bool

	mu      sync.Mutex
	peers   []Peer // replaced whole by SetPeers, never modified in place
	senders senders
	sends   sendLog
	running bool
}

// New checks cfg and returns a Heartbeat that sends to no one until
// SetPeers. Metrics go to reg (nil: not registered).
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Heartbeat, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	enter := cfg.Enter
	if enter == nil {
		enter = func(f func() error) error { return f() }
	}
	return &Heartbeat{
		cfg: cfg, log: log.With("component", "l2-heartbeat"), m: m,
		now: time.Now, enter: enter, minBackoff: minBackoff, maxBackoff: maxBackoff,
		senders: senders{},
	}, nil
}

// SetPeers replaces the addresses to send to. This node's own entries are
// ignored, as are invalid ones and, when Config.Listen is set, those of the
// other address family (logged). Safe to call at any time from any
// goroutine; the next send round uses the new set.
func (h *Heartbeat) SetPeers(peers []Peer) {
	out := make([]Peer, 0, len(peers))
	for _, p := range peers {
		p.Addr = p.Addr.Unmap()
		switch {
		case p.Node == h.cfg.Node:
			continue
		case p.Node == "" || !p.Addr.IsValid() || p.Addr.IsUnspecified():
			h.log.Warn("heartbeat: ignoring an invalid peer", "node", p.Node, "addr", p.Addr)
			continue
		case h.cfg.Listen.IsValid() && h.cfg.Listen.Is4() != p.Addr.Is4():
			h.log.Warn("heartbeat: ignoring a peer of the other address family than the listen address",
				"node", p.Node, "addr", p.Addr, "listen", h.cfg.Listen)
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Or(cmp.Compare(a.Node, b.Node), a.Addr.Compare(b.Addr)) })
	out = slices.Compact(out)
	h.mu.Lock()
	changed := !slices.Equal(h.peers, out)
	h.peers = out
	h.mu.Unlock()
	h.m.peers.Set(float64(len(out)))
	if changed {
		h.log.Debug("heartbeat peers set", "addresses", len(out))
	}
}

// Run sends a datagram to every peer every Interval and calls heard for
// every valid datagram from another node with the time of receipt on this
// node's clock (the sender's clock never matters). heard is called from one
// goroutine, never concurrently with itself, and should return quickly, as
// receiving waits for it (sending does not). Run returns nil when ctx
// ends, after every goroutine it started has returned. Socket failures
// (the port taken, the listen address missing) are logged, counted and
// retried with backoff for as long as ctx lasts. It is an error to call Run
// while another Run is running.
func (h *Heartbeat) Run(ctx context.Context, heard func(node string, at time.Time)) error {
	if heard == nil {
		return errors.New("heartbeat: Run needs a heard function")
	}
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("heartbeat: Run is already running")
	}
	h.running = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
	}()

	r := &round{incarnation: randomIncarnation()}
	backoff := h.minBackoff
	for {
		conn, err := h.open()
		if err == nil {
			h.log.Info("heartbeat listening", "addr", conn.LocalAddr(), "interval", h.cfg.Interval, "authenticated", len(h.cfg.Key) > 0)
			started := time.Now()
			err = h.serve(ctx, conn, r, heard)
			if ctx.Err() != nil {
				return nil
			}
			if time.Since(started) > h.maxBackoff {
				backoff = h.minBackoff // it worked for a while: a fresh failure
			}
		}
		h.m.socketErrors.Inc()
		h.log.Warn("heartbeat socket failed, retrying", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, h.maxBackoff)
	}
}

// SetRenewing sets the state bit sent from the next round on: whether this
// node's own Lease renewals are confirmed now. Safe from any goroutine.
func (h *Heartbeat) SetRenewing(ok bool) { h.renewing.Store(ok) }

// Receiving reports whether Run has its socket open, and so sends and
// receives. While it does not, no node is heard (the caller's liveness
// table sees every other node fall silent, as they see this one): a caller
// should not take a silence that starts with its own socket failing for
// everyone else's death.
func (h *Heartbeat) Receiving() bool { return h.receiving.Load() }

// round is the sender's sequence state, kept across socket reopenings so the
// receivers do not take the sequence restarting for replays.
type round struct {
	incarnation, seq uint64
}

func randomIncarnation() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // since Go 1.24 it never returns an error
	return binary.BigEndian.Uint64(b[:])
}

// open opens the socket: one dual-stack socket on every address, or one of
// Listen's family bound to it.
func (h *Heartbeat) open() (*net.UDPConn, error) {
	network, laddr := "udp", &net.UDPAddr{Port: h.cfg.Port}
	if a := h.cfg.Listen; a.IsValid() {
		network, laddr.IP, laddr.Zone = "udp6", a.AsSlice(), a.Zone()
		if a.Is4() {
			network = "udp4"
		}
	}
	var conn *net.UDPConn
	err := h.enter(func() (err error) {
		conn, err = net.ListenUDP(network, laddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err) // the error names the network and address
	}
	return conn, nil
}

// serve runs the send loop and the receive loop on conn until ctx ends or a
// read fails, and closes conn. The send loop has its own sockets (see
// sendLoop), but runs only while conn does: a speaker that cannot receive
// must not look alive to the others.
func (h *Heartbeat) serve(ctx context.Context, conn *net.UDPConn, r *round, heard func(string, time.Time)) error {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() }) // unblocks the read
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.sendLoop(ctx, r)
	}()
	h.receiving.Store(true)
	err := h.receive(conn, heard)
	h.receiving.Store(false)
	cancel()
	wg.Wait()
	stop()
	_ = conn.Close()
	return err
}
