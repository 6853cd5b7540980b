// Package bgp announces routes over BGP with an embedded GoBGP v3: one session per
// selected BGPPeer, routes applied per Service as a diff against what is announced.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// Options configure a Speaker.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// OnSessionChange is called (from GoBGP's goroutines) when a session goes up or down.
	OnSessionChange func(peer string, up bool)
	// Backoff bounds the delay between attempts to converge a session that
	// failed; zero values: 100 ms to 10 s.
	MinBackoff, MaxBackoff time.Duration

	newServer func(*slog.Logger) gobgp    // tests: a fake GoBGP
	newRelay  func(relayParams) transport // tests: a fake relay
}

// Speaker runs the BGP sessions of one node and announces Services' routes on them.
// All methods are safe for concurrent use.
//
// Sessions are level-triggered: SetSessions and SetSessionEnabled record what is
// wanted and converge at once; whatever fails (starting an instance, adding the
// neighbor, a path operation) is retried by a loop with exponential backoff
// until GoBGP holds what is wanted.
type Speaker struct {
	log     *slog.Logger
	onState func(string, bool)
	metrics *metrics
	opts    Options

	mu       sync.Mutex
	sessions map[string]*session
	routes   *table
	free     []gobgp // stopped GoBGP servers, reused for new sessions

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// New returns a Speaker with no sessions.
func New(o Options) *Speaker {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.newServer == nil {
		o.newServer = newGoBGP
	}
	if o.newRelay == nil {
		o.newRelay = startRelay
	}
	s := &Speaker{log: o.Logger, onState: o.OnSessionChange, opts: o, sessions: map[string]*session{}, routes: newTable(),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.metrics = newMetrics(s, o.Registerer)
	go s.loop()
	return s
}

// SetSessions makes the sessions match want (keyed by BGPPeer name): new peers
// are started and get every route already wanted for them, removed peers are
// stopped, and a peer whose BGP settings changed is restarted (changes to
// anything else, such as the BFD profile, leave the session alone). Errors are
// returned for logging; the Speaker keeps retrying.
func (s *Speaker) SetSessions(want []announce.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	seen := map[string]bool{}
	for _, spec := range want {
		seen[spec.Name] = true
		cur := s.sessions[spec.Name]
		if cur == nil {
			cur = newSession(spec, s.log, s.sessionChanged, s.poke, s.opts.newRelay)
			s.sessions[spec.Name] = cur
		} else {
			if (cur.spec.NextHopV6 != spec.NextHopV6 || cur.spec.NextHopV4 != spec.NextHopV4) && cur.running != nil {
				cur.resync = true // the other family's paths carry it
			}
			cur.spec = spec
		}
		cur.nextTry = time.Time{}
		if err := s.reconcile(cur); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", spec.Name, err))
		}
	}
	for name, cur := range s.sessions {
		if !seen[name] {
			s.log.Info("removing bgp session", "peer", name)
			s.release(cur)
			delete(s.sessions, name)
			s.metrics.forget(name)
		}
	}
	s.metrics.refreshPrefixes(s.routes)
	return errors.Join(errs...)
}

// release stops a session's BGP instance and keeps its server for reuse.
func (s *Speaker) release(sess *session) {
	sess.stopServer()
	if sess.srv != nil {
		s.free = append(s.free, sess.srv)
		sess.srv = nil
	}
}

func (s *Speaker) server() gobgp {
	if n := len(s.free); n > 0 {
		srv := s.free[n-1]
		s.free = s.free[:n-1]
		return srv
	}
	return s.opts.newServer(s.log)
}

// reconcile converges one session; the caller holds s.mu.
func (s *Speaker) reconcile(sess *session) error {
	name := sess.spec.Name
	err := sess.reconcile(context.Background(), s.server,
		func() map[netip.Prefix]Attrs { return s.routes.announced(name) },
		func(p netip.Prefix) (Attrs, bool) { return s.routes.wanted(routeKey{name, p}) })
	if err == nil {
		if sess.failures > 0 {
			sess.log.Info("bgp session converged after failures", "failures", sess.failures)
		}
		sess.failures, sess.nextTry, sess.lastErr = 0, time.Time{}, ""
		s.metrics.pending(name, 0)
		return nil
	}
	sess.failures++
	s.metrics.failure(name)
	s.metrics.pending(name, len(sess.dirty))
	backoff := s.opts.MinBackoff << min(sess.failures-1, 16)
	sess.nextTry = time.Now().Add(min(backoff, s.opts.MaxBackoff))
	if msg := err.Error(); msg != sess.lastErr {
		sess.lastErr = msg
		sess.log.Error("bgp session not converged; retrying", "err", err, "failures", sess.failures, "retryIn", time.Until(sess.nextTry).Round(time.Millisecond))
	}
	s.poke()
	return err
}

func (s *Speaker) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop retries the sessions that failed to converge, each after its backoff.
func (s *Speaker) loop() {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
		s.mu.Lock()
		var next time.Time
		now := time.Now()
		for _, sess := range s.sessions {
			if sess.failures == 0 {
				if sess.dropped.Load() || sess.refused.Load() {
					_ = s.reconcile(sess)
				}
				continue
			}
			if now.Before(sess.nextTry) {
				if next.IsZero() || sess.nextTry.Before(next) {
					next = sess.nextTry
				}
				continue
			}
			if s.reconcile(sess) != nil && (next.IsZero() || sess.nextTry.Before(next)) {
				next = sess.nextTry
			}
		}
		s.mu.Unlock()
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

func (s *Speaker) sessionChanged(peer string, up bool) {
	s.metrics.sessionUp(peer, up)
	if s.onState != nil {
		s.onState(peer, up)
	}
}

// Apply sets the routes of one Service (identified by key) to routes and sends only
// the difference. Routes towards peers without a session are kept and sent when the
// session appears. On error (a local-pref conflict with another Service sharing an
// aggregated prefix) the Service keeps what it had. A path operation that GoBGP
// refuses is reported and retried in the background.
func (s *Speaker) Apply(key string, routes []announce.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes, err := s.routes.apply(key, routes)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range changes {
		s.metrics.prefixDelta(c)
		sess := s.sessions[c.peer]
		if sess == nil {
			continue
		}
		if err := sess.put(c.prefix, c.attrs); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", c.peer, err))
			if sess.failures == 0 {
				sess.failures = 1
				sess.nextTry = time.Now().Add(s.opts.MinBackoff)
				s.metrics.failure(c.peer)
			}
			s.metrics.pending(c.peer, len(sess.dirty))
			s.poke()
		}
	}
	return errors.Join(errs...)
}

// Routes returns what the Speaker holds for one Service.
func (s *Speaker) Routes(key string) []announce.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes.services[key])
}

// ServicePeers returns the names of the peers that carry at least one of the
// Service's routes over an established session, sorted.
func (s *Speaker) ServicePeers(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.routes.services[key] {
		if sess := s.sessions[r.Peer]; sess != nil && sess.up.Load() && !slices.Contains(out, r.Peer) {
			out = append(out, r.Peer)
		}
	}
	sort.Strings(out)
	return out
}

// ServiceRoutes returns a copy of the routes the Service holds (the last Apply
// that succeeded for key).
func (s *Speaker) ServiceRoutes(key string) []announce.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes.services[key])
}

// Announced returns the prefixes announced towards one peer with their attributes.
func (s *Speaker) Announced(peer string) map[netip.Prefix]Attrs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes.announced(peer)
}

// SessionUp tells whether the session to peer is established.
func (s *Speaker) SessionUp(peer string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[peer]
	return sess != nil && sess.up.Load()
}

// SetSessionEnabled shuts a session down (false: the neighbor is removed, its
// routes leave the peer at once) or lets it connect again (true). The speaker
// uses it when BFD reports a path failure and recovery. It is idempotent and
// level-triggered: any sequence of calls ends with the last one in force.
func (s *Speaker) SetSessionEnabled(peer string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[peer]
	if sess == nil {
		return fmt.Errorf("peer %s: %w", peer, errNoSession)
	}
	if sess.enabled == on && sess.failures == 0 {
		return nil
	}
	sess.enabled = on
	sess.nextTry = time.Time{}
	return s.reconcile(sess)
}

// Reconnect tells the Speaker that the peer is reachable again (BFD came Up): a
// session that is enabled but not established dials at once instead of after
// its retry backoff.
func (s *Speaker) Reconnect(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[peer]; sess != nil && sess.enabled && !sess.up.Load() {
		sess.kicked.Store(true)
		_ = s.reconcile(sess)
	}
}

// SessionEnabled tells whether the session is wanted enabled (not shut by BFD),
// and whether it exists.
func (s *Speaker) SessionEnabled(peer string) (enabled, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[peer]
	return sess != nil && sess.enabled, sess != nil
}

// Servers returns how many GoBGP servers the Speaker has created (in use and
// pooled); it stays at the peak number of sessions however often they restart.
func (s *Speaker) Servers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.free)
	for _, sess := range s.sessions {
		if sess.srv != nil {
			n++
		}
	}
	return n
}

// Close stops every session and the retry loop: the speaker is stopping. A
// session with graceful restart (enableGracefulRestart) ends with its TCP
// connection closed and no NOTIFICATION: the peer, a graceful-restart helper
// (RFC 4724), keeps the routes, stale, until the next speaker is back and
// sends End-of-RIB. A Cease would make a peer without RFC 8538 drop them at
// once, and a rolling upgrade would withdraw every node in turn. Close
// returns once every such peer has closed its side too (or after
// peerCloseBound): the peer has then taken the session down. Other sessions
// end with GoBGP's Cease, as before.
func (s *Speaker) Close() {
	select {
	case <-s.stop:
		return
	default:
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	// The connections of graceful-restart sessions end first, all at once,
	// before GoBGP's Cease; Close returns once each peer has closed its side
	// (it holds our routes as stale then) or after peerCloseBound.
	var wg sync.WaitGroup
	for _, sess := range s.sessions {
		if sess.spec.GracefulRestart && sess.relay != nil {
			r := sess.relay
			sess.relay = nil
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.closeAfterPeer(peerCloseBound)
			}()
		}
	}
	wg.Wait()
	for name, sess := range s.sessions {
		s.release(sess)
		delete(s.sessions, name)
	}
}

// peerCloseBound: how long a stopping speaker waits for a graceful-restart
// peer to close its side of the connection.
const peerCloseBound = 2 * time.Second
