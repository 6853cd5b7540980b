package bfd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PeerKey identifies a session: one per (local, peer) address pair and kind.
// A single-hop session (RFC 5881) runs on UDP 3784, accepts only packets with
// TTL 255 and may run echo; a multi-hop one (MultiHop, RFC 5883) runs on UDP
// 4784, accepts packets whose TTL is at least the profile's MinimumTTL and
// runs no echo.
type PeerKey struct {
	Local, Peer netip.Addr
	MultiHop    bool
}

// String returns "local->peer", with " multihop" for a multi-hop session.
func (k PeerKey) String() string {
	s := k.Local.String() + "->" + k.Peer.String()
	if k.MultiHop {
		s += " multihop"
	}
	return s
}

// listenKey names a control listener: the local address and the kind of
// sessions it serves (their port).
type listenKey struct {
	addr     netip.Addr
	multiHop bool
}

// StateChange is delivered to subscribers on every state transition.
type StateChange struct {
	Key      PeerKey
	Old, New State
	Diag     Diagnostic // local diagnostic explaining the change
	// RemoteState and RemoteDiag are the State and Diagnostic of the peer's last
	// packet at the transition (after a detection timeout: Down and the last
	// diagnostic received).
	RemoteState State
	RemoteDiag  Diagnostic
	At          time.Time // from the injected clock, when the transition happened
}

// PathFailure tells whether the change is an Up session going down because the
// forwarding path failed, which is what BFD clients act on (RFC 5882 section
// 3.2). It is not when the peer signalled AdminDown, nor when the peer signalled
// Down without a failure diagnostic: none, AdminDown, or Neighbor Signaled
// Session Down (a peer that restarts its session, as FRR's bfdd does when bgpd
// re-registers it for a new BGP session, sends that; its packets still arrive,
// so the path works).
func (c StateChange) PathFailure() bool {
	if c.Old != StateUp || c.New == StateUp || c.New == StateAdminDown {
		return false
	}
	if c.Diag != DiagNeighborSignaledDown {
		return true // detection time expired, echo failed
	}
	if c.RemoteState == StateAdminDown {
		return false
	}
	switch c.RemoteDiag {
	case DiagNone, DiagAdminDown, DiagNeighborSignaledDown:
		return false
	}
	return true
}

// SessionInfo is a snapshot of one session for CLIs and status.
type SessionInfo struct {
	Key                   PeerKey
	State                 State
	RemoteState           State
	LocalDiag, RemoteDiag Diagnostic
	LocalDiscr            uint32
	RemoteDiscr           uint32
	TxInterval            time.Duration // negotiated, before jitter; 0 while the peer asks for no packets
	DetectionTime         time.Duration // negotiated; 0 before the first packet
	Profile               Profile
	LastChange            time.Time
	PacketsIn, PacketsOut uint64
	Muted                 bool   // see Manager.Mute
	EchoActive            bool   // echo packets are being sent and timed
	EchoPacketsIn         uint64 // our echo packets that came back
	EchoPacketsOut        uint64 // echo packets sent
	// UpEvents and DownEvents count transitions into and out of Up.
	UpEvents, DownEvents uint64
}

type managerOptions struct {
	clock     Clock
	logger    *slog.Logger
	reg       prometheus.Registerer
	transport transport
	nsPath    string
	port      int
}

// Option configures a Manager.
type Option func(*managerOptions)

// WithClock sets the clock (default RealClock()).
func WithClock(c Clock) Option { return func(o *managerOptions) { o.clock = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *managerOptions) { o.logger = l } }

// WithRegisterer registers the Manager's metrics: session up, up/down
// transitions, packets in/out per peer, and dropped packets per reason.
// Without it the metrics are kept but not exported.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *managerOptions) { o.reg = r } }

// WithNetNSPath makes the Manager create its sockets inside the network
// namespace at path (e.g. /var/run/netns/NAME), so one process can run
// Managers for several namespaces.
func WithNetNSPath(path string) Option { return func(o *managerOptions) { o.nsPath = path } }

// WithControlPort overrides UDP port 3784, for tests that cannot use a
// network namespace. Both ends must use the same port. Echo then uses
// port+1 and multi-hop sessions port+2.
func WithControlPort(port int) Option { return func(o *managerOptions) { o.port = port } }

// Manager runs many single-hop (RFC 5881, UDP 3784) and multi-hop (RFC 5883,
// UDP 4784) sessions in one process.
type Manager struct {
	clock   Clock
	log     *slog.Logger
	tr      transport
	metrics *metrics

	mu        sync.RWMutex
	closed    bool
	sessions  map[PeerKey]*session
	byDiscr   map[uint32]*session
	listeners map[listenKey]*listenerRef
	ports     map[uint16]bool
	rnd       *rand.Rand

	subMu sync.Mutex
	subs  map[*subscriber]struct{}
}

type listenerRef struct {
	c     io.Closer
	echo  io.Closer // nil until a session of this address runs echo
	users int
}

// Close closes the control and echo listeners.
func (lr *listenerRef) Close() error {
	err := lr.c.Close()
	if lr.echo != nil {
		err = errors.Join(err, lr.echo.Close())
	}
	return err
}

// NewManager returns a Manager; it opens sockets only when peers are added.
func NewManager(opts ...Option) *Manager {
	o := managerOptions{clock: RealClock(), logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.transport == nil {
		o.transport = udpTransport{nsPath: o.nsPath, port: o.port}
	}
	return &Manager{
		clock:     o.clock,
		log:       o.logger.With("component", "bfd"),
		tr:        o.transport,
		metrics:   newMetrics(o.reg),
		sessions:  map[PeerKey]*session{},
		byDiscr:   map[uint32]*session{},
		listeners: map[listenKey]*listenerRef{},
		ports:     map[uint16]bool{},
		rnd:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		subs:      map[*subscriber]struct{}{},
	}
}

// ErrClosed is returned by calls on a closed Manager.
var ErrClosed = errors.New("bfd manager closed")

// ErrUnknownPeer is returned for a PeerKey without a session.
var ErrUnknownPeer = errors.New("no bfd session for peer")

func validKey(k PeerKey) error {
	switch {
	case !k.Local.IsValid() || !k.Peer.IsValid():
		return fmt.Errorf("bfd peer %s: local and peer address are required", k)
	case k.Local.Unmap().Is4() != k.Peer.Unmap().Is4():
		return fmt.Errorf("bfd peer %s: local and peer address families differ", k)
	case k.Local == k.Peer:
		return fmt.Errorf("bfd peer %s: local and peer address are the same", k)
	}
	return nil
}

func normKey(k PeerKey) PeerKey {
	return PeerKey{Local: k.Local.Unmap(), Peer: k.Peer.Unmap(), MultiHop: k.MultiHop}
}

// AddPeer starts a session from local to peer. The UDP listener on local:3784 is shared
// by all sessions on that local address; each session sends from its own source port in
// 49152-65535 with TTL 255.
func (m *Manager) AddPeer(key PeerKey, p Profile) error {
	key = normKey(key)
	if err := validKey(key); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("bfd peer %s: %w", key, err)
	}
	s, err := m.addSession(key, p)
	if err != nil {
		return fmt.Errorf("bfd peer %s: %w", key, err)
	}
	m.log.Info("bfd session added", "local", key.Local, "peer", key.Peer,
		"discriminator", s.core.localDiscr, "sourcePort", s.port)
	s.step(func(now time.Time) output { return s.core.tick(now) })
	return nil
}

func (m *Manager) addSession(key PeerKey, p Profile) (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.sessions[key]; ok {
		return nil, errors.New("session already exists")
	}
	lk := listenKey{addr: key.Local, multiHop: key.MultiHop}
	lr := m.listeners[lk]
	if lr == nil {
		c, err := m.tr.listen(lk.addr, lk.multiHop, func(b []byte, src netip.Addr, ttl int, age time.Duration) { m.deliver(lk, b, src, ttl, age) })
		if err != nil {
			return nil, err
		}
		lr = &listenerRef{c: c}
		m.listeners[lk] = lr
	}
	var tx sender
	var port uint16
	var dialErr error
	for range 64 {
		port = uint16(SourcePortMin + m.rnd.IntN(SourcePortMax-SourcePortMin+1))
		if m.ports[port] {
			continue
		}
		if tx, dialErr = m.tr.dial(key.Local, port, key.Peer, key.MultiHop); dialErr == nil {
			break
		}
	}
	if tx == nil {
		if c := m.releaseListener(lk, lr); c != nil {
			// Close off the lock: the receive loop may be waiting for m.mu.
			go m.closeListener(key.Local, c)
		}
		return nil, fmt.Errorf("no free source port: %w", dialErr)
	}
	var discr uint32
	for discr == 0 || m.byDiscr[discr] != nil {
		discr = m.rnd.Uint32()
	}
	now := m.clock.Now()
	s := &session{
		m:          m,
		key:        key,
		port:       port,
		tx:         tx,
		profile:    p,
		core:       newCore(discr, p.params(), p.PassiveMode, m.rnd.Uint64(), now),
		echoRetry:  now,
		lastChange: now,
		metrics:    m.metrics.forSession(key),
	}
	s.idle = sync.NewCond(&s.mu)
	s.core.echoIv = p.echoInterval(key)
	s.metrics.up.Set(0)
	s.timer = m.clock.AfterFunc(time.Hour, s.onTimer)
	lr.users++
	m.ports[port] = true
	m.sessions[key] = s
	m.byDiscr[discr] = s
	return s, nil
}

// releaseListener unregisters an unused listener; the caller closes it after
// releasing m.mu (closing waits for the receive goroutine, which takes m.mu).
func (m *Manager) releaseListener(lk listenKey, lr *listenerRef) io.Closer {
	if lr.users > 0 {
		return nil
	}
	delete(m.listeners, lk)
	return lr
}

func (m *Manager) closeListener(local netip.Addr, c io.Closer) {
	if c == nil {
		return
	}
	if err := c.Close(); err != nil {
		m.log.Debug("close bfd listener", "local", local, "err", err)
	}
}

// UpdatePeer changes a session's profile. While the session is Up the change
// is negotiated with a Poll Sequence, so the session does not flap.
func (m *Manager) UpdatePeer(key PeerKey, p Profile) error {
	key = normKey(key)
	if err := p.Validate(); err != nil {
		return fmt.Errorf("bfd peer %s: %w", key, err)
	}
	s, err := m.session(key)
	if err != nil {
		return err
	}
	s.step(func(now time.Time) output {
		s.profile = p
		return s.core.configure(p.params(), p.PassiveMode, p.echoInterval(key), now)
	})
	return nil
}

// RemovePeer sends one AdminDown packet to the peer, then stops the session
// and releases its sockets. Subscribers see the transition to AdminDown.
func (m *Manager) RemovePeer(key PeerKey) error {
	key = normKey(key)
	m.mu.Lock()
	s, ok := m.sessions[key]
	var unused io.Closer
	if ok {
		delete(m.sessions, key)
		delete(m.byDiscr, s.core.localDiscr)
		delete(m.ports, s.port)
		lk := listenKey{addr: key.Local, multiHop: key.MultiHop}
		lr := m.listeners[lk]
		lr.users--
		unused = m.releaseListener(lk, lr)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("bfd peer %s: %w", key, ErrUnknownPeer)
	}
	s.stop()
	m.closeListener(key.Local, unused)
	m.metrics.forget(key)
	m.log.Info("bfd session removed", "local", key.Local, "peer", key.Peer)
	return nil
}

// Mute stops (muted=true) or resumes a session's transmission while it keeps
// receiving and running its timers: fault injection that makes this end fall
// silent like a frozen or powered-off peer, for benchmarks and fabrics.
func (m *Manager) Mute(key PeerKey, muted bool) error {
	s, err := m.session(normKey(key))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.muted = muted
	s.mu.Unlock()
	return nil
}

func (m *Manager) session(key PeerKey) (*session, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	s, ok := m.sessions[key]
	if !ok {
		return nil, fmt.Errorf("bfd peer %s: %w", key, ErrUnknownPeer)
	}
	return s, nil
}

// Sessions returns a snapshot of every session, sorted by key.
func (m *Manager) Sessions() []SessionInfo {
	m.mu.RLock()
	list := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		list = append(list, s)
	}
	m.mu.RUnlock()
	infos := make([]SessionInfo, 0, len(list))
	for _, s := range list {
		infos = append(infos, s.info())
	}
	sort.Slice(infos, func(i, j int) bool {
		if c := infos[i].Key.Local.Compare(infos[j].Key.Local); c != 0 {
			return c < 0
		}
		if c := infos[i].Key.Peer.Compare(infos[j].Key.Peer); c != 0 {
			return c < 0
		}
		return !infos[i].Key.MultiHop && infos[j].Key.MultiHop
	})
	return infos
}

// Close removes every session (each sends AdminDown), closes the listeners
// and ends every subscription (their channels are closed).
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true // from here AddPeer fails, so the snapshot below is complete
	keys := make([]PeerKey, 0, len(m.sessions))
	for k := range m.sessions {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	for _, k := range keys {
		_ = m.RemovePeer(k)
	}
	m.mu.Lock()
	var closers []io.Closer
	for a, lr := range m.listeners {
		closers = append(closers, lr)
		delete(m.listeners, a)
	}
	m.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c.Close())
	}
	m.subMu.Lock()
	subs := m.subs
	m.subs = map[*subscriber]struct{}{}
	m.subMu.Unlock()
	for s := range subs {
		s.cancel()
	}
	return errors.Join(errs...)
}

// deliver is the hot receive path of one local address.
func (m *Manager) deliver(lk listenKey, b []byte, src netip.Addr, ttl int, age time.Duration) {
	local := lk.addr
	// Single-hop: only a packet sent with TTL 255 from a directly connected
	// system arrives with 255 (RFC 5881 section 5). Multi-hop: at least the
	// session's minimum TTL, checked by the session (RFC 5883 section 5).
	if !lk.multiHop && ttl != SingleHopTTL {
		m.metrics.dropped.WithLabelValues(local.String(), "ttl").Inc()
		return
	}
	p, err := ParseControlPacket(b)
	if err != nil {
		reason := "malformed"
		var pe *ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason.Error()
		}
		m.metrics.dropped.WithLabelValues(local.String(), reason).Inc()
		return
	}
	m.mu.RLock()
	var s *session
	if p.YourDiscriminator != 0 {
		s = m.byDiscr[p.YourDiscriminator]
		if s != nil && (s.key.Local != local || s.key.Peer != src || s.key.MultiHop != lk.multiHop) {
			s = nil
		}
	} else {
		s = m.sessions[PeerKey{Local: local, Peer: src, MultiHop: lk.multiHop}]
	}
	m.mu.RUnlock()
	if s == nil {
		m.metrics.dropped.WithLabelValues(local.String(), "no-session").Inc()
		return
	}
	s.receive(p, ttl, age)
}

// deliverEcho handles one of our echo packets coming back.
func (m *Manager) deliverEcho(local netip.Addr, b []byte, src netip.Addr) {
	discr, ok := parseEcho(b)
	if !ok || src != local {
		return
	}
	m.mu.RLock()
	s := m.byDiscr[discr]
	m.mu.RUnlock()
	if s != nil && s.key.Local == local {
		s.echoIn()
	}
}

// echoListener opens the echo listener of local if needed.
func (m *Manager) echoListener(local netip.Addr) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lr := m.listeners[listenKey{addr: local}]
	if lr == nil {
		return ErrClosed
	}
	if lr.echo != nil {
		return nil
	}
	c, err := m.tr.listenEcho(local, func(b []byte, src netip.Addr) { m.deliverEcho(local, b, src) })
	if err != nil {
		return err
	}
	lr.echo = c
	return nil
}

// Subscribe returns a channel of every state change of every session, and a
// cancel function that ends the subscription and closes the channel. Events
// are queued without bound per subscriber, so a slow reader never blocks the
// sessions and never loses an event.
func (m *Manager) Subscribe() (<-chan StateChange, func()) {
	s := newSubscriber()
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		s.cancel()
		return s.out, func() {}
	}
	m.subMu.Lock()
	m.subs[s] = struct{}{}
	m.subMu.Unlock()
	return s.out, func() {
		m.subMu.Lock()
		delete(m.subs, s)
		m.subMu.Unlock()
		s.cancel()
	}
}

func (m *Manager) publish(ev StateChange) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for s := range m.subs {
		s.push(ev)
	}
}
