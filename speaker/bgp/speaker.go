// Package bgp announces routes over BGP with an embedded GoBGP v3: one session per
// selected BGPPeer, routes applied per Service as a diff against what is announced.
package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// Options configure a Speaker.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// OnSessionChange is called (from GoBGP's goroutines) when a session goes up or down.
	OnSessionChange func(peer string, up bool)
}

// Speaker runs the BGP sessions of one node and announces Services' routes on them.
// All methods are safe for concurrent use.
type Speaker struct {
	log     *slog.Logger
	onState func(string, bool)
	metrics *metrics

	mu       sync.Mutex
	sessions map[string]*session
	routes   *table
}

// New returns a Speaker with no sessions.
func New(o Options) *Speaker {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Speaker{log: o.Logger, onState: o.OnSessionChange, sessions: map[string]*session{}, routes: newTable()}
	s.metrics = newMetrics(s, o.Registerer)
	return s
}

// SetSessions makes the running sessions match want (keyed by BGPPeer name): new
// peers are started and get every route already wanted for them, removed peers are
// stopped, and a peer whose settings changed is restarted.
func (s *Speaker) SetSessions(want []announce.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	seen := map[string]bool{}
	for _, spec := range want {
		seen[spec.Name] = true
		cur := s.sessions[spec.Name]
		if cur != nil && reflect.DeepEqual(cur.spec, spec) {
			continue
		}
		if cur != nil {
			s.log.Info("restarting bgp session with new settings", "peer", spec.Name)
			cur.stop()
			delete(s.sessions, spec.Name)
		}
		ns, err := startSession(spec, s.log, s.sessionChanged)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.sessions[spec.Name] = ns
		for prefix, a := range s.routes.announced(spec.Name) {
			if err := ns.announce(prefix, a); err != nil {
				errs = append(errs, fmt.Errorf("peer %s: announce %s: %w", spec.Name, prefix, err))
			}
		}
		s.log.Info("bgp session configured", "peer", spec.Name, "address", spec.PeerAddress, "port", spec.PeerPort,
			"myASN", spec.MyASN, "peerASN", spec.PeerASN, "routerID", spec.RouterID)
	}
	for name, cur := range s.sessions {
		if !seen[name] {
			s.log.Info("removing bgp session", "peer", name)
			cur.stop()
			delete(s.sessions, name)
		}
	}
	s.metrics.refreshPrefixes(s.routes)
	return errors.Join(errs...)
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
// aggregated prefix) the Service keeps what it had.
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
		if c.attrs == nil {
			err = sess.withdraw(c.prefix)
		} else {
			err = sess.announce(c.prefix, *c.attrs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("peer %s prefix %s: %w", c.peer, c.prefix, err))
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

// SetSessionEnabled administratively shuts a session down (false) or lets it connect
// again (true). The speaker uses it when BFD reports the peer down and up.
func (s *Speaker) SetSessionEnabled(peer string, on bool) error {
	s.mu.Lock()
	sess := s.sessions[peer]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("peer %s: no session", peer)
	}
	return sess.setEnabled(on)
}

// Close stops every session.
func (s *Speaker) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, sess := range s.sessions {
		sess.stop()
		delete(s.sessions, name)
	}
}
