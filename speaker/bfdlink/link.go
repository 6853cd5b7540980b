// Package bfdlink ties BFD sessions to BGP sessions: a BGPPeer with a bfdProfile
// gets a BFD session to the same address (multi-hop when the BGPPeer sets
// ebgpMultiHop), and when BFD reports a path failure the
// BGP session is shut at once (routes leave the peer without waiting for the hold
// timer); it is let up again when BFD is Up.
//
// The link is level-triggered: for every BGP session the wanted state is
// "enabled unless its BFD session went down on a path failure and has not been
// Up since"; BFD events only change that flag and wake a loop, which asserts the
// flag on the BGP side and retries BFD sessions that could not be created, with
// backoff. A peer's AdminDown or a peer restarting its BFD session is not a path
// failure (RFC 5882 section 3.2) and costs no BGP flap; at start-up, before BFD
// is Up for the first time, BGP is not held back.
package bfdlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// BFDManager is the part of bfd.Manager this package uses.
type BFDManager interface {
	AddPeer(bfd.PeerKey, bfd.Profile) error
	UpdatePeer(bfd.PeerKey, bfd.Profile) error
	RemovePeer(bfd.PeerKey) error
	Subscribe() (<-chan bfd.StateChange, func())
}

// SessionControl shuts BGP sessions down and lets them up again (bgp.Speaker).
// Calls must be idempotent: the link repeats them until they succeed.
type SessionControl interface {
	SetSessionEnabled(peer string, on bool) error
	// SessionEnabled reads back whether the session is wanted enabled, and
	// whether it exists.
	SessionEnabled(peer string) (enabled, exists bool)
	// Reconnect says the peer answers again: a session still trying to
	// connect should dial now.
	Reconnect(peer string)
}

// Link keeps BFD sessions in step with the BGP sessions.
type Link struct {
	mgr        BFDManager
	bgp        SessionControl
	log        *slog.Logger
	local      func(peer netip.Addr) (netip.Addr, error)
	up         *prometheus.GaugeVec
	failures   *prometheus.CounterVec
	minBackoff time.Duration
	maxBackoff time.Duration

	mu         sync.Mutex
	want       map[string]announce.Session // BGP sessions with a BFD profile, by BGPPeer name
	byKey      map[bfd.PeerKey]string      // running BFD session → BGPPeer name
	byName     map[string]entry            // running BFD sessions
	suppressed map[string]bool             // BGP sessions shut because of a path failure
	managed    map[string]bool             // BGP sessions whose enable flag the link asserts
	failed     map[string]int              // consecutive failures per BGPPeer
	lastErr    map[string]string
	nextTry    time.Time
	wake       chan struct{}
}

type entry struct {
	key     bfd.PeerKey
	profile bfd.Profile
}

// New returns a Link; call Run to react to BFD state changes and retry.
func New(mgr BFDManager, bgp SessionControl, log *slog.Logger, reg prometheus.Registerer) *Link {
	l := &Link{mgr: mgr, bgp: bgp, log: log, local: kernelSource, minBackoff: 200 * time.Millisecond, maxBackoff: 10 * time.Second,
		want: map[string]announce.Session{}, byKey: map[bfd.PeerKey]string{}, byName: map[string]entry{},
		suppressed: map[string]bool{}, managed: map[string]bool{}, failed: map[string]int{}, lastErr: map[string]string{},
		wake: make(chan struct{}, 1),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "bfd_session_up", Help: "1 when the BFD session to the BGP peer is Up."}, []string{"peer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "bfd_link_failures_total", Help: "Failed attempts to create, update or remove the BFD session of a BGP peer, or to apply its state to BGP; retried."}, []string{"peer"}),
	}
	if reg != nil {
		reg.MustRegister(l.up, l.failures)
	}
	return l
}

// kernelSource asks the kernel which local address it would use towards peer (a UDP
// connect sends nothing).
func kernelSource(peer netip.Addr) (netip.Addr, error) {
	c, err := net.Dial("udp", netip.AddrPortFrom(peer, 3784).String())
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// Profile converts a BFDProfile, filling defaults.
func Profile(p *announce.BFDProfile) bfd.Profile {
	var out bfd.Profile
	set := func(dst *uint32, src *uint32) {
		if src != nil {
			*dst = *src
		}
	}
	set(&out.ReceiveInterval, p.ReceiveInterval)
	set(&out.TransmitInterval, p.TransmitInterval)
	set(&out.DetectMultiplier, p.DetectMultiplier)
	set(&out.EchoInterval, p.EchoInterval)
	set(&out.MinimumTTL, p.MinimumTTL)
	if p.EchoMode != nil {
		out.EchoMode = *p.EchoMode
	}
	if p.PassiveMode != nil {
		out.PassiveMode = *p.PassiveMode
	}
	return out.WithDefaults()
}

// SetSessions records which BGP sessions have a BFD profile and converges the BFD
// sessions to them at once: added, updated in place (timers change through a Poll
// Sequence, without a flap) or removed. What fails is returned and retried by Run.
func (l *Link) SetSessions(sessions []announce.Session) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.want = map[string]announce.Session{}
	var errs []error
	for _, s := range sessions {
		if s.BFD == nil {
			continue
		}
		if err := Profile(s.BFD).Validate(); err != nil {
			// Not retried: only a new configuration can fix it.
			errs = append(errs, fmt.Errorf("peer %s: BFDProfile %q: %w", s.Name, s.BFD.Name, err))
			continue
		}
		l.want[s.Name] = s
	}
	l.failed = map[string]int{}
	if err := l.converge(true); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("bfd: %w", errors.Join(errs...))
	}
	return nil
}

// converge brings the BFD sessions (when sessions is set) and the BGP enable
// flags to what is wanted; the caller holds l.mu. Failures are counted per peer
// and scheduled for retry. A BFD state change converges the flags only: it
// changes nothing about which BFD sessions exist.
func (l *Link) converge(sessions bool) error {
	var errs []error
	fail := func(name string, err error) {
		errs = append(errs, fmt.Errorf("peer %s: %w", name, err))
		l.failed[name]++
		l.failures.WithLabelValues(name).Inc()
		if msg := err.Error(); msg != l.lastErr[name] {
			l.lastErr[name] = msg
			l.log.Error("bfd link not converged; retrying", "peer", name, "err", err, "failures", l.failed[name])
		}
	}
	if sessions {
		l.convergeSessions(fail)
	}
	l.convergeFlags(fail)
	if len(l.failed) > 0 {
		n := 0
		for _, c := range l.failed {
			n = max(n, c)
		}
		l.nextTry = time.Now().Add(min(l.minBackoff<<min(n-1, 16), l.maxBackoff))
		l.poke()
	} else {
		l.nextTry = time.Time{}
	}
	return errors.Join(errs...)
}

// convergeSessions adds, updates and removes BFD sessions.
func (l *Link) convergeSessions(fail func(string, error)) {
	// Each wanted session's addresses, looked up once (the kernel picks the
	// local address when the BGPPeer names none).
	keys := make(map[string]bfd.PeerKey, len(l.want))
	for name, w := range l.want {
		key, err := l.keyFor(w)
		if err != nil {
			fail(name, fmt.Errorf("local address for BFD: %w", err))
			continue
		}
		keys[name] = key
	}
	// Remove BFD sessions no longer wanted or whose addresses changed.
	for name, cur := range l.byName {
		if k, ok := keys[name]; ok && k == cur.key {
			continue
		}
		if _, wanted := l.want[name]; wanted {
			if _, resolved := keys[name]; !resolved {
				continue // keep it until the new addresses are known
			}
		}
		if err := l.mgr.RemovePeer(cur.key); err != nil && !errors.Is(err, bfd.ErrUnknownPeer) {
			fail(name, fmt.Errorf("remove BFD session: %w", err))
			continue
		}
		delete(l.byKey, cur.key)
		delete(l.byName, name)
		l.up.DeleteLabelValues(name)
		delete(l.suppressed, name) // no BFD session: BGP is not held back by it
	}
	for name, key := range keys {
		p := Profile(l.want[name].BFD)
		cur, running := l.byName[name]
		switch {
		case !running:
			if err := l.mgr.AddPeer(key, p); err != nil {
				fail(name, fmt.Errorf("add BFD session: %w", err))
				continue
			}
			l.up.WithLabelValues(name).Set(0)
			l.log.Info("bfd session added", "peer", name, "local", key.Local, "remote", key.Peer)
		case cur.profile != p:
			if err := l.mgr.UpdatePeer(key, p); err != nil {
				fail(name, fmt.Errorf("update BFD session: %w", err))
				continue
			}
		}
		l.byName[name] = entry{key: key, profile: p}
		l.byKey[key] = name
		delete(l.failed, name)
		delete(l.lastErr, name)
	}
}

// convergeFlags reads the BGP side back and asserts each session's wanted
// enable flag: shut while its BFD session is down after a path failure.
func (l *Link) convergeFlags(fail func(string, error)) {
	for name := range l.want {
		l.managed[name] = true
	}
	for name := range l.managed {
		_, bfdWanted := l.want[name]
		if !bfdWanted {
			delete(l.suppressed, name) // no BFD session: BGP is not held back by it
		}
		on := !l.suppressed[name]
		cur, exists := l.bgp.SessionEnabled(name)
		if !exists {
			continue // no BGP session (yet): nothing to hold back
		}
		if cur != on {
			if err := l.bgp.SetSessionEnabled(name, on); err != nil {
				fail(name, fmt.Errorf("set BGP session enabled=%v: %w", on, err))
				continue
			}
		}
		if !bfdWanted {
			delete(l.managed, name)
			delete(l.failed, name) // BFD-wanted names are cleared by convergeSessions
			delete(l.lastErr, name)
		}
	}
}

func (l *Link) keyFor(s announce.Session) (bfd.PeerKey, error) {
	local := s.SourceAddress
	if !local.IsValid() {
		a, err := l.local(s.PeerAddress)
		if err != nil {
			return bfd.PeerKey{}, err
		}
		local = a
	}
	// A peer more than one hop away (ebgpMultiHop) gets a multi-hop session
	// (RFC 5883); a directly connected one a single-hop session (RFC 5881).
	return bfd.PeerKey{Local: local, Peer: s.PeerAddress, MultiHop: s.EBGPMultiHop}, nil
}

func (l *Link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run handles BFD state changes and retries what failed until ctx ends.
func (l *Link) Run(ctx context.Context) {
	ch, cancel := l.mgr.Subscribe()
	defer cancel()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			l.handle(ev)
		case <-l.wake:
		case <-timer.C:
			l.mu.Lock()
			if !l.nextTry.IsZero() && !time.Now().Before(l.nextTry) {
				_ = l.converge(true)
			}
			l.mu.Unlock()
		}
		l.mu.Lock()
		next := l.nextTry
		l.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// handle turns one BFD state change into the wanted BGP state and converges.
func (l *Link) handle(ev bfd.StateChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	name, ok := l.byKey[ev.Key]
	if !ok {
		return
	}
	switch {
	case ev.New == bfd.StateUp:
		l.up.WithLabelValues(name).Set(1)
		if l.suppressed[name] {
			l.log.Info("bfd up: enabling BGP session", "peer", name)
		}
		delete(l.suppressed, name)
		defer l.bgp.Reconnect(name)
	case ev.Old == bfd.StateUp:
		l.up.WithLabelValues(name).Set(0)
		if ev.PathFailure() {
			l.log.Warn("bfd down: shutting BGP session", "peer", name, "diag", ev.Diag.String(),
				"remoteState", ev.RemoteState.String(), "remoteDiag", ev.RemoteDiag.String())
			l.suppressed[name] = true
		} else {
			l.log.Info("bfd down without a path failure: BGP session stays", "peer", name, "diag", ev.Diag.String(),
				"remoteState", ev.RemoteState.String(), "remoteDiag", ev.RemoteDiag.String())
		}
	default:
		return
	}
	_ = l.converge(false)
}
