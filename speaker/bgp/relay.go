package bgp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// The relay carries one BGP session between the peer and the session's GoBGP
// server, which listens on loopback and never dials (passive neighbor). It
// exists for two reasons:
//
//   - Nothing received is kept. GoBGP stores every path a peer sends in its
//     adj-RIB-in before any import policy runs, so a ToR sending a full table
//     would fill the speaker. The relay hands GoBGP a KEEPALIVE in place of each
//     UPDATE from the peer (the hold timer still sees traffic) and counts the
//     prefixes it dropped.
//   - The session starts when it is wanted. GoBGP waits 1-2 s before its first
//     dial and a connect-retry interval between dials; the relay dials the peer
//     at once, retries with its own backoff, and dials again at once when BFD
//     reports the peer reachable.
//
// Everything that belongs to the TCP connection to the peer (address, port,
// source address, TCP MD5, TTL) is the relay's; GoBGP sees a loopback
// connection, so the relay rewrites the next-hops GoBGP derives from it
// (127.0.0.1) to the connection's real local address: the peer receives
// exactly what GoBGP would have sent on a direct connection.
type relay struct {
	relayParams
	kickCh  chan struct{}
	closeCh chan struct{}
	closing atomic.Bool
	// ending: the connection to the peer is half closed (closeAfterPeer);
	// GoBGP's messages are dropped until the peer closes its side.
	ending atomic.Bool
	// writing is held (a token in it) around every write to the peer, so
	// the half close falls between two messages, never inside one.
	writing chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	// kickedAt: when BFD last reported the peer reachable (unix ns; 0:
	// never); for eagerWindow after it the retry backoff stays under
	// eagerRetry.
	kickedAt atomic.Int64

	mu         sync.Mutex
	peer       net.Conn           // the connection to the peer while piping
	dialCancel context.CancelFunc // the dial to the peer in flight
	dialStart  time.Time
}

// relayParams is what a relay is started with.
type relayParams struct {
	cfg   relayConfig
	gobgp netip.AddrPort // GoBGP's listener
	key   string         // TCP MD5 key of the loopback hop; "": none
	log   *slog.Logger
	stats *relayStats
	// onRefused: GoBGP closed a connection without sending its OPEN (its
	// neighbor sits in an idle hold); the session replaces the neighbor.
	onRefused func()
	// dropHold says how long to wait before dialling again after an
	// established session ended (kick ends the wait); nil: no wait.
	dropHold func() time.Duration
	// stable overrides relayStable (tests).
	stable time.Duration
}

// relayConfig is the part of a session's settings that lives in the TCP
// connection rather than in BGP; a change restarts the relay, not GoBGP.
type relayConfig struct {
	peer     netip.AddrPort
	source   netip.Addr // invalid: the kernel's choice
	password string     // TCP MD5 towards the peer
	ttl      int        // 0: the system default
	retryMax time.Duration
}

// relayStats counts what the relay dropped; kept by the session across relays.
type relayStats struct {
	discardedUpdates, discardedPrefixes atomic.Uint64
}

// transport is a running relay as the session sees it (tests use a fake).
type transport interface {
	// kick makes a relay waiting to retry dial at once.
	kick()
	// close stops the relay: at once if it is not piping, otherwise when GoBGP
	// has closed its side (it sends a Cease first) or after grace.
	close(grace time.Duration)
	// closeAfterPeer stops the relay with no NOTIFICATION to the peer: it
	// half closes a piping connection and returns once the peer has closed
	// its side, or after bound.
	closeAfterPeer(bound time.Duration)
}

const (
	relayDialTimeout = 5 * time.Second
	relayMinRetry    = 200 * time.Millisecond
	// relayStable: a session that lasted this long is redialled at once when it
	// ends; shorter ones back off.
	relayStable = 10 * time.Second
	// gobgpWait bounds how long a connected peer waits for GoBGP to take the
	// connection (GoBGP refuses connections while its neighbor is idle).
	gobgpWait    = 10 * time.Second
	gobgpOpenDue = 2 * time.Second
	// refusedEvery: while GoBGP keeps refusing, the relay reports it this often.
	refusedEvery = 250 * time.Millisecond
	// staleDial: a dial in flight this long has likely lost its SYN.
	staleDial = 500 * time.Millisecond
	// eagerWindow, eagerRetry: for eagerWindow after BFD reports the peer
	// reachable, failed attempts are retried at least every eagerRetry. The
	// path is known good then; what turns the relay away is the peer's idle
	// hold after the last session (GoBGP: 5 s, others a few seconds), and a
	// backoff grown to seconds would miss its end by as much.
	eagerWindow = 15 * time.Second
	eagerRetry  = time.Second
)

// hopLoopback is the address of both ends of the loopback hop.
var hopLoopback = netip.MustParseAddr("127.0.0.1")

func relayConfigOf(spec announce.Session) relayConfig {
	port := spec.PeerPort
	if port == 0 {
		port = 179
	}
	ttl := 0
	if !spec.IBGP() {
		ttl = 1 // eBGP: directly connected unless multi-hop (GoBGP's rule)
		if spec.EBGPMultiHop {
			ttl = 255
		}
	}
	retry := spec.ConnectTime
	if retry < time.Second {
		retry = time.Second
	}
	return relayConfig{peer: netip.AddrPortFrom(spec.PeerAddress, port), source: spec.SourceAddress,
		password: spec.Password, ttl: ttl, retryMax: retry}
}

func startRelay(p relayParams) transport {
	ctx, cancel := context.WithCancel(context.Background())
	r := &relay{relayParams: p, kickCh: make(chan struct{}, 1), closeCh: make(chan struct{}),
		writing: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go r.run()
	return r
}

// kick also restarts a dial that has been in flight for a while: its SYN may
// have gone out while the path was down, and TCP would retransmit it only a
// second or more after it was sent. A younger dial is left alone: cancelling
// one whose handshake is completing would close a connection the peer has
// just accepted, which many routers answer with an idle hold of seconds.
//
// A kick while the relay pipes an established connection is dropped: it must
// not shorten the wait after that connection ends (see dropHold).
func (r *relay) kick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peer != nil {
		return
	}
	r.kickedAt.Store(time.Now().UnixNano())
	select {
	case r.kickCh <- struct{}{}:
	default:
	}
	if r.dialCancel != nil && time.Since(r.dialStart) >= staleDial {
		r.dialCancel()
	}
}

func (r *relay) close(grace time.Duration) {
	if !r.startClose() {
		return
	}
	r.mu.Lock()
	piping := r.peer != nil
	r.mu.Unlock()
	if !piping || grace <= 0 {
		r.cancel()
		return
	}
	go r.cancelAfter(time.NewTimer(grace), "")
}

// closeAfterPeer sends the peer a FIN and waits for the peer's: a peer
// closes its end when it has taken the session down, which for a
// graceful-restart helper means it has marked our routes stale and keeps
// them. Whoever acts on the session's end afterwards (BFD going AdminDown)
// then acts on a session the peer already holds as restarting. The FIN
// follows the message being written, if any (see writing).
func (r *relay) closeAfterPeer(bound time.Duration) {
	if !r.startClose() {
		return
	}
	r.mu.Lock()
	tc, _ := r.peer.(*net.TCPConn)
	r.mu.Unlock()
	if tc == nil {
		r.cancel()
		return
	}
	t := time.NewTimer(bound)
	select {
	case r.writing <- struct{}{}:
	case <-t.C: // a write to a peer that reads nothing: give up
		r.log.Info("the peer did not take the message in flight in time", "bound", bound)
		r.cancel()
		return
	}
	r.ending.Store(true)
	err := tc.CloseWrite()
	<-r.writing
	if err != nil {
		t.Stop()
		r.cancel()
		return
	}
	r.cancelAfter(t, "the peer did not close its side of the connection in time")
}

// startClose marks the relay closing; false if it already was.
func (r *relay) startClose() bool {
	if !r.closing.CompareAndSwap(false, true) {
		return false
	}
	close(r.closeCh)
	return true
}

// cancelAfter ends the relay when its session loop has ended or t fires,
// whichever comes first (logging late, if set, in the second case).
func (r *relay) cancelAfter(t *time.Timer, late string) {
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		if late != "" {
			r.log.Info(late)
		}
	}
	r.cancel()
}

func (r *relay) run() {
	defer close(r.done)
	defer r.cancel()
	var delay time.Duration
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-r.closeCh:
			case <-r.kickCh:
			case <-t.C:
			}
			t.Stop()
		}
		if r.closing.Load() {
			return
		}
		lasted, err := r.session()
		if r.closing.Load() {
			return
		}
		stable := r.stable
		if stable == 0 {
			stable = relayStable
		}
		switch {
		case lasted >= stable:
			// A long session ended: dial again at once, or, with BFD, once BFD
			// had time to tell whether the path failed. A dial that BFD then
			// cuts short leaves the peer with a connection that failed before
			// its OPEN, which routers answer with an idle hold (GoBGP: 5 s).
			delay = 0
			if r.dropHold != nil {
				delay = r.dropHold()
			}
		case delay == 0:
			delay = relayMinRetry
		default:
			delay = min(2*delay, r.cfg.retryMax)
		}
		if k := r.kickedAt.Load(); k != 0 && time.Since(time.Unix(0, k)) < eagerWindow {
			delay = min(delay, eagerRetry)
		}
		select {
		case <-r.kickCh: // kicked during the attempt (a dial in flight is cut short): again at once
			delay = 0
		default:
		}
		if err != nil {
			r.log.Debug("bgp connection", "err", err, "lasted", lasted, "retryIn", delay)
		}
	}
}

// session connects the peer to GoBGP and pipes until either side closes; it
// returns how long the two were connected.
func (r *relay) session() (time.Duration, error) {
	peer, err := r.dialPeer()
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", r.cfg.peer, err)
	}
	r.log.Debug("bgp connection to the peer", "local", peer.LocalAddr().String())
	stop := context.AfterFunc(r.ctx, func() { peer.Close() })
	defer stop()
	defer peer.Close()
	g, open, err := r.dialGoBGP()
	if err != nil {
		return 0, err
	}
	defer g.Close()
	stopG := context.AfterFunc(r.ctx, func() { g.Close() })
	defer stopG()
	local, ok := netip.AddrFromSlice(peer.LocalAddr().(*net.TCPAddr).IP)
	if !ok {
		return 0, errors.New("no local address")
	}
	start := time.Now()
	r.mu.Lock()
	r.peer = peer
	select {
	case <-r.kickCh: // a kick from before the connection is spent
	default:
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.peer = nil
		r.mu.Unlock()
	}()
	if err := r.writePeer(peer, open); err != nil {
		return 0, fmt.Errorf("send OPEN: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- r.fromPeer(peer, g) }()
	go func() { errc <- r.toPeer(g, peer, local.Unmap()) }()
	err = <-errc
	// Not piping any more before either side sees the end: a kick (BFD Up)
	// from then on counts.
	r.mu.Lock()
	r.peer = nil
	r.mu.Unlock()
	peer.Close()
	g.Close()
	<-errc
	return time.Since(start), err
}

func (r *relay) dialPeer() (net.Conn, error) {
	d := net.Dialer{Timeout: relayDialTimeout, Control: func(network, address string, c syscall.RawConn) error {
		return sockopts(c, r.cfg.peer.Addr(), r.cfg.password, r.cfg.ttl)
	}}
	if r.cfg.source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: r.cfg.source.AsSlice()}
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	r.mu.Lock()
	r.dialCancel, r.dialStart = cancel, time.Now()
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.dialCancel = nil
		r.mu.Unlock()
	}()
	return d.DialContext(ctx, "tcp", r.cfg.peer.String())
}

// dialGoBGP connects to GoBGP's listener and returns the connection with
// GoBGP's OPEN read from it. While GoBGP refuses (its neighbor is in an idle
// hold, or was added a moment ago), it retries every 50 ms, reporting the
// refusal at once and then every refusedEvery.
func (r *relay) dialGoBGP() (net.Conn, []byte, error) {
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: hopLoopback.AsSlice()},
		Control: func(network, address string, c syscall.RawConn) error {
			return sockopts(c, hopLoopback, r.key, 0)
		}}
	deadline := time.Now().Add(gobgpWait)
	var reported time.Time
	for {
		g, err := d.DialContext(r.ctx, "tcp4", r.gobgp.String())
		if err == nil {
			_ = g.SetReadDeadline(time.Now().Add(gobgpOpenDue))
			stop := context.AfterFunc(r.ctx, func() { g.Close() })
			var m []byte
			m, err = readMessage(g, nil)
			stop()
			if err == nil && msgType(m) == msgOpen {
				_ = g.SetReadDeadline(time.Time{})
				return g, m, nil
			}
			g.Close()
			if err == nil {
				err = fmt.Errorf("first message of type %d, not OPEN", msgType(m))
			}
		}
		if r.ctx.Err() != nil || r.closing.Load() {
			return nil, nil, errors.New("relay closed")
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("local bgp instance did not take the connection: %w", err)
		}
		if r.onRefused != nil && time.Since(reported) >= refusedEvery {
			reported = time.Now()
			r.onRefused()
		}
		select {
		case <-r.ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// fromPeer forwards the peer's messages to GoBGP, each UPDATE replaced by a
// KEEPALIVE.
func (r *relay) fromPeer(peer, g net.Conn) error {
	var buf []byte
	for {
		m, err := readMessage(peer, buf)
		if err != nil {
			return fmt.Errorf("reading the peer: %w", err)
		}
		buf = m
		if msgType(m) == msgUpdate {
			n, _ := countPrefixes(m) // a malformed UPDATE is dropped like any other
			r.stats.discardedUpdates.Add(1)
			r.stats.discardedPrefixes.Add(uint64(n))
			m = keepalive
		}
		if _, err := g.Write(m); err != nil {
			return fmt.Errorf("writing the local bgp instance: %w", err)
		}
	}
}

// toPeer forwards GoBGP's messages to the peer, with next-hops GoBGP took
// from the loopback hop replaced by the real local address.
func (r *relay) toPeer(g, peer net.Conn, local netip.Addr) error {
	var buf []byte
	for {
		m, err := readMessage(g, buf)
		if err != nil {
			return fmt.Errorf("reading the local bgp instance: %w", err)
		}
		buf = m
		if msgType(m) == msgUpdate {
			if err := rewriteNextHops(m, hopLoopback, local); err != nil {
				return fmt.Errorf("update from the local bgp instance: %w", err)
			}
		}
		if err := r.writePeer(peer, m); err != nil {
			return fmt.Errorf("writing the peer: %w", err)
		}
	}
}

// writePeer writes one message to the peer whole, unless the connection is
// half closed (the message is then dropped).
func (r *relay) writePeer(peer net.Conn, m []byte) error {
	r.writing <- struct{}{}
	defer func() { <-r.writing }()
	if r.ending.Load() {
		return nil // half closed: nothing more goes to the peer
	}
	_, err := peer.Write(m)
	return err
}

// sockopts sets TCP MD5 (key for addr) and the TTL on a socket before it connects.
func sockopts(c syscall.RawConn, addr netip.Addr, key string, ttl int) error {
	var err error
	cerr := c.Control(func(fd uintptr) {
		if key != "" {
			if err = setMD5(int(fd), addr, key); err != nil {
				err = fmt.Errorf("tcp md5: %w", err)
				return
			}
		}
		if ttl > 0 {
			if addr.Unmap().Is4() {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl)
			} else {
				err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
			}
			if err != nil {
				err = fmt.Errorf("ttl: %w", err)
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// setMD5 installs the TCP MD5 signature key (RFC 2385) for peer addr on fd.
func setMD5(fd int, addr netip.Addr, key string) error {
	if len(key) > unix.TCP_MD5SIG_MAXKEYLEN {
		return fmt.Errorf("key longer than %d bytes", unix.TCP_MD5SIG_MAXKEYLEN)
	}
	sig := unix.TCPMD5Sig{Keylen: uint16(len(key))}
	if a := addr.Unmap(); a.Is4() {
		sig.Addr.Family = unix.AF_INET
		b := a.As4()
		copy(sig.Addr.Data[2:6], b[:]) // sockaddr_in: port, then address
	} else {
		sig.Addr.Family = unix.AF_INET6
		b := a.As16()
		copy(sig.Addr.Data[6:22], b[:]) // sockaddr_in6: port, flow info, then address
	}
	copy(sig.Key[:], key)
	return unix.SetsockoptTCPMD5Sig(fd, unix.IPPROTO_TCP, unix.TCP_MD5SIG, &sig)
}

// hopKey returns a fresh random TCP MD5 key for the loopback hop, so that no
// other local process can take GoBGP's place or the relay's; "" where the
// kernel cannot sign on a listener like GoBGP's.
var hopKey = func() func() string {
	var supported bool
	var once sync.Once
	return func() string {
		once.Do(func() {
			var lc net.ListenConfig // what GoBGP's listener uses
			l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				return
			}
			defer l.Close()
			sc, err := l.(*net.TCPListener).SyscallConn()
			if err != nil {
				return
			}
			_ = sc.Control(func(fd uintptr) { supported = setMD5(int(fd), hopLoopback, "probe") == nil })
		})
		if !supported {
			return ""
		}
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
}()

// freeLoopbackPort returns a TCP port free on the loopback address at the
// moment of the call (GoBGP's listener takes it next; if something else wins
// the race, the start fails and is retried with another port).
func freeLoopbackPort() (uint16, error) {
	l, err := net.Listen("tcp4", netip.AddrPortFrom(hopLoopback, 0).String())
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port), nil
}
