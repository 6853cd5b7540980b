package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/proto"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// gobgp is the part of GoBGP's *server.BgpServer a session drives; unit tests
// use a fake.
type gobgp interface {
	StartBgp(context.Context, *api.StartBgpRequest) error
	StopBgp(context.Context, *api.StopBgpRequest) error
	WatchEvent(context.Context, *api.WatchEventRequest, func(*api.WatchEventResponse)) error
	AddPeer(context.Context, *api.AddPeerRequest) error
	DeletePeer(context.Context, *api.DeletePeerRequest) error
	ListPeer(context.Context, *api.ListPeerRequest, func(*api.Peer)) error
	AddPath(context.Context, *api.AddPathRequest) (*api.AddPathResponse, error)
	ListPath(context.Context, *api.ListPathRequest, func(*api.Destination)) error
	DeletePath(context.Context, *api.DeletePathRequest) error
}

// newGoBGP starts a GoBGP server. Its Serve loop never ends (GoBGP v3 has no way
// to stop it), so servers are pooled and reused, never dropped.
func newGoBGP(log *slog.Logger) gobgp {
	s := server.NewBgpServer(server.LoggerOption(newLogger(log)))
	go s.Serve()
	return s
}

// session is one BGP session: a GoBGP server of its own with at most one
// neighbor, passive, on loopback, and a relay that dials the peer and carries
// the session to it (see relay.go). One server per session keeps each peer's
// RIB separate, so per-peer attributes and `peers` restrictions need no
// policies.
//
// The session is level-triggered: spec and enabled are what is wanted; the
// other fields record what GoBGP was told successfully, and reconcile (called
// by the Speaker's loop with backoff) converges one to the other after
// reading the neighbor back from GoBGP. Disabling removes the neighbor (GoBGP
// sends the peer a Cease) and stops the relay; enabling adds the neighbor
// afresh and starts a relay, which dials at once: GoBGP's admin-state requests
// can be dropped, and a re-enabled neighbor would wait out an idle hold.
type session struct {
	spec    announce.Session // wanted settings
	enabled bool             // wanted: not shut down by BFD
	log     *slog.Logger
	onUp    func(name string, up bool)
	onDrop  func() // the peer ended an established session; wakes the Speaker's loop

	srv     gobgp             // nil until the first reconcile
	running *announce.Session // settings the server was started with; nil: stopped
	listen  netip.AddrPort    // the server's loopback listener
	hopKey  string            // TCP MD5 key of the loopback hop
	peer    *api.Peer         // the neighbor as added; nil: none in the server
	cancel  context.CancelFunc
	up      atomic.Bool
	gen     atomic.Uint64 // bumped on every (re)start; stale watch events are ignored

	newRelay func(relayParams) transport
	relay    transport   // nil: not dialling the peer
	relayCfg relayConfig // what relay was started with
	stats    relayStats
	// dropped: the established session ended without us asking; refused: GoBGP
	// turned the relay's connection away. Either way GoBGP's neighbor sits in
	// an idle hold (5 s after a drop); a fresh neighbor takes a connection at once.
	dropped atomic.Bool
	refused atomic.Bool
	// kicked: BFD came Up; a relay waiting to retry dials at once.
	kicked   atomic.Bool
	addedAt  time.Time    // when the neighbor was added
	dropHold atomic.Int64 // relayParams.dropHold, from the BFD profile

	// discardedAtAdd is stats.discardedUpdates when the neighbor was added:
	// GoBGP counted each UPDATE the relay dropped since as a KEEPALIVE.
	discardedAtAdd uint64

	// resync: the server's RIB must be rebuilt from the wanted routes (after a
	// start); dirty: prefixes whose last AddPath/DeletePath failed.
	resync bool
	dirty  map[netip.Prefix]bool

	failures int       // consecutive failed reconciles
	nextTry  time.Time // zero: reconcile whenever woken
	lastErr  string
}

// freshNeighbor: a neighbor younger than this that refuses the relay is not
// replaced (it is leaving its first hold; a replacement would be as young).
const freshNeighbor = 200 * time.Millisecond

// relayCloseGrace is how long a stopping relay waits for GoBGP's Cease to
// reach the peer.
const relayCloseGrace = time.Second

func newSession(spec announce.Session, log *slog.Logger, onUp func(string, bool), onDrop func(), newRelay func(relayParams) transport) *session {
	return &session{spec: spec, enabled: true, log: log.With("peer", spec.Name), onUp: onUp, onDrop: onDrop,
		newRelay: newRelay, dirty: map[netip.Prefix]bool{}}
}

// needsServerRestart tells whether going from a to b needs a new BGP instance
// (the local AS and router ID are global settings).
func needsServerRestart(a, b announce.Session) bool {
	return a.MyASN != b.MyASN || a.RouterID != b.RouterID
}

// start starts the server with spec's global settings, listening on a free
// loopback port for the relay (nothing else can reach it: the hop is signed
// with a fresh TCP MD5 key where the kernel supports it); and a watch on the
// neighbor's state. Nothing learned needs an import policy: the relay hands GoBGP no UPDATE.
func (s *session) start(ctx context.Context) error {
	spec := s.spec
	port, err := freeLoopbackPort()
	if err != nil {
		return fmt.Errorf("loopback port: %w", err)
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:             spec.MyASN,
		RouterId:        spec.RouterID.String(),
		ListenAddresses: []string{hopLoopback.String()},
		ListenPort:      int32(port),
	}}); err != nil {
		return fmt.Errorf("start bgp: %w", err)
	}
	s.listen = netip.AddrPortFrom(hopLoopback, port)
	s.hopKey = hopKey()
	running := spec
	s.running = &running
	s.peer = nil
	s.resync = true
	gen := s.gen.Add(1)
	wctx, cancel := context.WithCancel(context.Background())
	if err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		s.peerEvent(gen, r)
	}); err != nil {
		cancel()
		return fmt.Errorf("watch: %w", err)
	}
	s.cancel = cancel
	return nil
}

// stopServer stops the BGP instance (the neighbor gets a Cease), keeping the
// server for reuse.
func (s *session) stopServer() {
	defer s.stopRelay(relayCloseGrace)
	if s.cancel != nil {
		s.cancel() // watchers first, or their goroutines can hang in StopBgp
		s.cancel = nil
	}
	if s.running != nil {
		_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	}
	s.running, s.peer = nil, nil
	s.gen.Add(1)
	s.setUp(false)
}

// peerConfig is GoBGP's neighbor for spec: the relay's end of the loopback
// hop, passive (the relay connects), with the session's BGP settings. TCP
// settings towards the peer (port, source, password, TTL) are the relay's.
func peerConfig(spec announce.Session, hopKey string) *api.Peer {
	secs := func(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: hopLoopback.String(),
			PeerAsn:         spec.PeerASN,
			LocalAsn:        spec.MyASN,
			AuthPassword:    hopKey,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           secs(spec.ConnectTime),
			HoldTime:               secs(spec.HoldTime),
			KeepaliveInterval:      max(secs(spec.KeepaliveTime), 1),
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{PassiveMode: true},
	}
	for _, afi := range families(spec) {
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true}})
	}
	if spec.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: 120}
		for _, af := range p.AfiSafis {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
	}
	return p
}

// families are the AFIs (unicast) negotiated with the peer, as MetalLB's FRR
// configuration activates them: the peer address's family, both with
// dualStackAddressFamily.
func families(spec announce.Session) []api.Family_Afi {
	switch {
	case spec.DualStack:
		return []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6}
	case spec.PeerAddress.Is6():
		return []api.Family_Afi{api.Family_AFI_IP6}
	default:
		return []api.Family_Afi{api.Family_AFI_IP}
	}
}

// reconcile converges the server to the wanted state: started with the right
// global settings, the neighbor present (with the wanted configuration) exactly
// when enabled, and the RIB holding the wanted routes. want returns the routes
// wanted towards this session's peer.
func (s *session) reconcile(ctx context.Context, pool func() gobgp, want func() map[netip.Prefix]Attrs, wantOne func(netip.Prefix) (Attrs, bool)) error {
	if s.srv == nil {
		s.srv = pool()
	}
	if s.running != nil && needsServerRestart(*s.running, s.spec) {
		s.log.Info("restarting bgp instance with new router ID or AS")
		s.stopServer()
	}
	if s.running == nil {
		if err := s.start(ctx); err != nil {
			s.stopServer()
			return err
		}
	}
	// Routes first: a neighbor added, or a relay started, before GoBGP holds
	// every wanted route could come up and get End-of-RIB after a part of
	// them, and a graceful-restart helper flushes the rest. A route that
	// fails is retried, and does not hold the session back.
	routesErr := s.reconcileRoutes(want, wantOne)
	return errors.Join(routesErr, s.reconcilePeer(ctx))
}

// reconcilePeer reads the neighbor back from GoBGP and adds, replaces or removes it.
func (s *session) reconcilePeer(ctx context.Context) error {
	var present *api.Peer
	if s.peer != nil {
		addr := s.peer.Conf.NeighborAddress
		if err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: addr}, func(p *api.Peer) {
			if p.GetConf().GetNeighborAddress() == addr {
				present = p
			}
		}); err != nil {
			return fmt.Errorf("list neighbor: %w", err)
		}
		if present == nil {
			s.log.Warn("bgp neighbor missing from GoBGP; adding it again")
			s.peer = nil
		} else if present.GetState().GetAdminState() != api.PeerState_UP && s.enabled {
			// Nothing of ours disables a neighbor; if something did, start afresh.
			s.log.Warn("bgp neighbor administratively down in GoBGP; re-adding it", "adminState", present.GetState().GetAdminState().String())
			if err := s.deletePeer(ctx, "re-adding"); err != nil {
				return err
			}
		}
	}
	// A neighbor in GoBGP's idle hold (after the peer dropped the session, or
	// found refusing the relay) is replaced: a fresh one takes a connection at
	// once. One added a moment ago may still be on its way out of its first,
	// zero-length hold: the relay's next try gets through.
	dropped, refused := s.dropped.Swap(false), s.refused.Swap(false)
	refused = refused && time.Since(s.addedAt) >= freshNeighbor
	if s.peer != nil && s.enabled && !s.up.Load() && (dropped || refused) {
		why := "bgp session dropped by the peer"
		if !dropped {
			why = "local bgp neighbor refused the connection"
		}
		s.log.Info(why + ": replacing the neighbor")
		if err := s.deletePeer(ctx, "idle hold"); err != nil {
			s.dropped.Store(dropped)
			s.refused.Store(refused)
			return err
		}
	}
	want := peerConfig(s.spec, s.hopKey)
	if s.peer != nil && (!s.enabled || !proto.Equal(s.peer, want)) {
		why := "BFD down"
		if s.enabled {
			why = "settings changed"
			s.log.Info("restarting bgp session with new settings")
		}
		if err := s.deletePeer(ctx, why); err != nil {
			return err
		}
	}
	if s.peer == nil && s.enabled {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: want}); err != nil {
			return fmt.Errorf("add neighbor for %s: %w", s.spec.PeerAddress, err)
		}
		s.peer = want
		s.addedAt = time.Now()
		s.discardedAtAdd = s.stats.discardedUpdates.Load()
		s.log.Info("bgp session configured", "address", s.spec.PeerAddress, "port", s.spec.PeerPort,
			"myASN", s.spec.MyASN, "peerASN", s.spec.PeerASN, "routerID", s.spec.RouterID)
	}
	s.reconcileRelay()
	return nil
}

// reconcileRelay runs a relay exactly while the neighbor is there, restarting
// it when the connection settings changed. BFD Up kicks a relay that waits to
// retry.
func (s *session) reconcileRelay() {
	want := relayConfigOf(s.spec)
	s.dropHold.Store(int64(bfdDetectTime(s.spec.BFD)))
	kicked := s.kicked.Swap(false)
	if s.relay != nil && (s.peer == nil || s.relayCfg != want) {
		grace := relayCloseGrace // a removed neighbor's Cease is on its way
		if s.peer != nil {
			s.log.Info("connection settings changed: reconnecting")
			grace = 0
		}
		s.stopRelay(grace)
	}
	if s.relay == nil && s.peer != nil {
		s.relay = s.newRelay(relayParams{cfg: want, gobgp: s.listen, key: s.hopKey, log: s.log, stats: &s.stats,
			onRefused: func() {
				s.refused.Store(true)
				if s.onDrop != nil {
					s.onDrop()
				}
			},
			dropHold: func() time.Duration { return time.Duration(s.dropHold.Load()) }})
		s.relayCfg = want
		return
	}
	if kicked && s.relay != nil && !s.up.Load() {
		s.log.Info("bfd up and bgp not established: connecting at once")
		s.relay.kick()
	}
}

// bfdDetectTime is about how long BFD takes to call a path failed with the
// profile p (nil: no BFD, 0): after a drop the relay waits that long, unless
// BFD comes Up first, so that it does not dial over a path BFD is about to
// call down.
func bfdDetectTime(p *announce.BFDProfile) time.Duration {
	if p == nil {
		return 0
	}
	val := func(v *uint32, def uint32) time.Duration {
		if v == nil {
			return time.Duration(def)
		}
		return time.Duration(*v)
	}
	interval := max(val(p.ReceiveInterval, 300), val(p.TransmitInterval, 300)) * time.Millisecond
	return min(max(interval*val(p.DetectMultiplier, 3)+100*time.Millisecond, 300*time.Millisecond), 10*time.Second)
}

func (s *session) stopRelay(grace time.Duration) {
	if s.relay != nil {
		s.relay.close(grace)
		s.relay = nil
	}
}

func (s *session) deletePeer(ctx context.Context, why string) error {
	s.log.Debug("removing bgp neighbor", "why", why)
	addr := s.peer.Conf.NeighborAddress
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr}); err != nil {
		return fmt.Errorf("remove neighbor %s (%s): %w", addr, why, err)
	}
	s.peer = nil
	s.setUp(false)
	return nil
}

// reconcileRoutes sends what the RIB lacks: every wanted route after a start,
// otherwise the prefixes whose last call failed.
func (s *session) reconcileRoutes(want func() map[netip.Prefix]Attrs, wantOne func(netip.Prefix) (Attrs, bool)) error {
	var errs []error
	if s.resync {
		for p, a := range want() {
			if err := s.announce(p, a); err != nil {
				s.dirty[p] = true
				errs = append(errs, err)
			}
		}
		s.resync = false
	}
	for p := range s.dirty {
		var err error
		if a, ok := wantOne(p); ok {
			err = s.announce(p, a)
		} else {
			err = s.withdraw(p)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.dirty, p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d route operations failed, first: %w", len(errs), errs[0])
	}
	return nil
}

// ready tells whether route operations can go to the server now.
func (s *session) ready() bool { return s.running != nil && !s.resync }

// put applies one route change (nil attrs: withdraw). A failure leaves the
// prefix dirty for the next reconcile; a prefix is clean only after its call
// succeeded.
func (s *session) put(prefix netip.Prefix, a *Attrs) error {
	if !s.ready() {
		return nil // the resync after the start sends what is wanted then
	}
	var err error
	if a == nil {
		err = s.withdraw(prefix)
	} else {
		err = s.announce(prefix, *a)
	}
	if err != nil {
		s.dirty[prefix] = true
		return err
	}
	delete(s.dirty, prefix)
	return nil
}

// setUp records the session state and reports whether it changed.
func (s *session) setUp(up bool) bool {
	if s.up.Swap(up) == up {
		return false
	}
	s.log.Info("bgp session state", "up", up)
	if s.onUp != nil {
		s.onUp(s.spec.Name, up)
	}
	return true
}

func (s *session) peerEvent(gen uint64, r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.Peer == nil || pe.Peer.State == nil || gen != s.gen.Load() {
		return
	}
	up := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
	if s.setUp(up) && !up {
		s.dropped.Store(true)
		if s.onDrop != nil {
			s.onDrop()
		}
	}
}

// path builds the GoBGP path for prefix; a nil attrs builds a withdrawal.
// nextHopV4 and nextHopV6 are the next-hops of the routes of the family the
// session does not run over (invalid: the session's local address).
func path(prefix netip.Prefix, a *Attrs, nextHopV4, nextHopV6 netip.Addr) (*api.Path, error) {
	var nlri bgp.AddrPrefixInterface
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if prefix.Addr().Is4() {
		nlri = bgp.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		// 0.0.0.0: GoBGP puts the session's local address as next-hop.
		nh := "0.0.0.0"
		if nextHopV4.IsValid() {
			nh = nextHopV4.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	} else {
		nlri = bgp.NewIPv6AddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		nh := "::" // unspecified: GoBGP uses the session's local address
		if nextHopV6.IsValid() {
			nh = nextHopV6.String()
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	if a != nil {
		if a.LocalPref != 0 {
			attrs = append(attrs, bgp.NewPathAttributeLocalPref(a.LocalPref))
		}
		var std []uint32
		var large []*bgp.LargeCommunity
		for _, c := range a.Communities {
			if c.Large {
				large = append(large, bgp.NewLargeCommunity(c.Global, c.Local1, c.Local2))
			} else {
				std = append(std, c.Value)
			}
		}
		if len(std) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeCommunities(std))
		}
		if len(large) > 0 {
			attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(large))
		}
	}
	return apiutil.NewPath(nlri, a == nil, attrs, time.Now())
}

// announce adds or replaces the path for prefix (same source and path id: GoBGP
// replaces it in place).
func (s *session) announce(prefix netip.Prefix, a Attrs) error {
	p, err := path(prefix, &a, s.nextHopV4(), s.nextHopV6())
	if err != nil {
		return err
	}
	if _, err = s.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
		return fmt.Errorf("announce %s: %w", prefix, err)
	}
	return nil
}

// nextHopV4 is the next-hop of IPv4 routes: the node's IPv4 address on a
// session over IPv6; invalid (the local address) on one over IPv4.
func (s *session) nextHopV4() netip.Addr {
	if s.spec.PeerAddress.Is4() {
		return netip.Addr{}
	}
	return s.spec.NextHopV4
}

// nextHopV6 is the next-hop of IPv6 routes: the node's IPv6 address on a
// session over IPv4; invalid (the local address) on one over IPv6.
func (s *session) nextHopV6() netip.Addr {
	if s.spec.PeerAddress.Is6() {
		return netip.Addr{}
	}
	return s.spec.NextHopV6
}

// withdraw deletes exactly the path for prefix. Never call DeletePath without a path:
// GoBGP would delete every local path.
func (s *session) withdraw(prefix netip.Prefix) error {
	p, err := path(prefix, nil, s.nextHopV4(), s.nextHopV6())
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p}); err != nil {
		return fmt.Errorf("withdraw %s: %w", prefix, err)
	}
	return nil
}

// counters reads the neighbor's UPDATEs sent and how many prefixes the peer
// sent: dropped by the relay on arrival, plus any GoBGP holds (none).
func (s *session) counters() (updatesSent, prefixesReceived uint64) {
	prefixesReceived = s.stats.discardedPrefixes.Load()
	if s.srv == nil || s.peer == nil {
		return 0, prefixesReceived
	}
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: s.peer.Conf.NeighborAddress}, func(p *api.Peer) {
		if p.State != nil && p.State.Messages != nil && p.State.Messages.Sent != nil {
			updatesSent = p.State.Messages.Sent.Update
		}
		for _, af := range p.AfiSafis {
			prefixesReceived += af.GetState().GetReceived()
		}
	})
	return
}

// errNoSession is returned for a peer the Speaker has no session for.
var errNoSession = errors.New("no session")
