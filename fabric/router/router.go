package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	bgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/internal/bfdrun"
	"github.com/ecmplb/ecmplb/fabric/internal/idlehold"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// Router is one running ToR router.
type Router struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	fib    FIB
	rib    *rib.RIB
	events *eventLog
	bgp    *server.BgpServer
	bfd    bfdrun.Service
	reg    *prometheus.Registry
	met    *metrics

	fibMu     sync.Mutex
	fibDirty  map[netip.Prefix]struct{}
	fibKick   chan struct{}
	fibRoutes map[netip.Prefix]control.FIBRoute

	// adminMu orders the neighbor admin changes (drain and repair) and the
	// renewals of dropped neighbors, so one does not undo the other.
	adminMu   sync.Mutex
	peerMu    sync.Mutex
	peerState map[netip.Addr]api.PeerState_SessionState
	neighbors map[netip.Addr]Neighbor
	startedCh chan struct{}
}

// Option configures a Router.
type Option func(*Router)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Router) { r.log = l } }

// WithFIB replaces the kernel FIB programmer (used when Config.FIB is true).
func WithFIB(f FIB) Option { return func(r *Router) { r.fib = f } }

// WithClock sets the time source used for RIB and event timestamps.
func WithClock(now func() time.Time) Option { return func(r *Router) { r.now = now } }

// New returns a router for cfg; Run starts it.
func New(cfg Config, opts ...Option) *Router {
	r := &Router{
		cfg:       cfg,
		log:       slog.Default(),
		now:       time.Now,
		fib:       KernelFIB{},
		rib:       rib.New(0),
		events:    newEventLog(10000),
		fibDirty:  map[netip.Prefix]struct{}{},
		fibKick:   make(chan struct{}, 1),
		fibRoutes: map[netip.Prefix]control.FIBRoute{},
		peerState: map[netip.Addr]api.PeerState_SessionState{},
		neighbors: map[netip.Addr]Neighbor{},
		startedCh: make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("router", cfg.Name)
	r.reg = prometheus.NewRegistry()
	r.met = newMetrics(r.reg, cfg.Name)
	return r
}

// RIB is the router's ECMP view.
func (r *Router) RIB() *rib.RIB { return r.rib }

// Run starts BGP, BFD, the FIB programmer and the control API and blocks until ctx is
// done, then stops them.
func (r *Router) Run(ctx context.Context) error {
	if r.cfg.FIB {
		if err := r.fib.Flush(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	fibCtx, stopFIB := context.WithCancel(context.Background())
	defer stopFIB()
	if r.cfg.FIB {
		wg.Add(1)
		go func() { defer wg.Done(); r.fibLoop(fibCtx) }()
		wg.Add(1)
		go func() { defer wg.Done(); r.resyncOnLinkUp(fibCtx) }()
	}

	bgpLog := gobgplog.New(r.log.With("component", "gobgp"), gobgplog.WithLevel(bgplog.InfoLevel))
	bgpOpts := []server.ServerOption{server.LoggerOption(bgpLog)}
	if r.cfg.GRPCAddress != "" {
		bgpOpts = append(bgpOpts, server.GrpcListenAddress(r.cfg.GRPCAddress))
	}
	r.bgp = server.NewBgpServer(bgpOpts...)
	go r.bgp.Serve()
	defer r.bgp.Stop()

	err := r.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:              r.cfg.ASN,
		RouterId:         r.cfg.Address.String(),
		ListenPort:       179,
		ListenAddresses:  []string{r.cfg.Address.String()},
		UseMultiplePaths: true,
	}})
	if err != nil {
		return fmt.Errorf("router %s: start bgp: %w", r.cfg.Name, err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.bgp.StopBgp(stopCtx, &api.StopBgpRequest{}); err != nil {
			r.log.Warn("stop bgp", "err", err)
		}
	}()

	if !r.cfg.ExportToNodes {
		err := r.bgp.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT,
		}})
		if err != nil {
			return fmt.Errorf("router %s: export policy: %w", r.cfg.Name, err)
		}
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch() // before StopBgp (deferred earlier, runs later)
	if err := r.watch(watchCtx); err != nil {
		return err
	}
	// The BFD manager opens sockets only once a peer is added.
	r.bfd = bfdrun.New(r.log, r.reg)
	defer r.bfd.Close()
	bfdCh, stopBFDSub := r.bfd.Changes()
	defer stopBFDSub()
	wg.Add(1)
	go func() { defer wg.Done(); r.bfdLoop(watchCtx, bfdCh) }()
	for _, n := range r.cfg.Neighbors {
		if err := r.AddNeighbor(ctx, n); err != nil {
			return err
		}
	}
	if r.cfg.DynamicRange.IsValid() {
		if err := r.addDynamic(ctx); err != nil {
			return err
		}
	}

	_ = os.Remove(r.cfg.ControlSocket)
	ln, err := net.Listen("unix", r.cfg.ControlSocket)
	if err != nil {
		return fmt.Errorf("router %s: control socket: %w", r.cfg.Name, err)
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("control api", "err", err)
		}
	}()
	close(r.startedCh)
	r.log.Info("router running", "address", r.cfg.Address, "asn", r.cfg.ASN, "neighbors", len(r.cfg.Neighbors),
		"grpc", r.cfg.GRPCAddress, "control", r.cfg.ControlSocket)

	// After a Fatal GoBGP runs on in a state it did not expect: stop, so the
	// harness sees a dead router rather than a wrong RIB.
	var runErr error
	select {
	case <-ctx.Done():
		r.log.Info("router stopping")
	case err := <-bgpLog.Fatals():
		runErr = fmt.Errorf("router %s: %w", r.cfg.Name, err)
		r.log.Error("router stopping", "err", runErr)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	_ = os.Remove(r.cfg.ControlSocket)
	stopWatch()
	stopFIB()
	return runErr
}

func (r *Router) timers() *api.Timers {
	t := r.cfg.Timers
	secs := func(d time.Duration, min uint64) uint64 { return max(uint64(d/time.Second), min) }
	return &api.Timers{Config: &api.TimersConfig{
		HoldTime:               secs(t.HoldTime.Std(), 3),
		KeepaliveInterval:      secs(t.KeepaliveInterval.Std(), 1),
		ConnectRetry:           secs(t.ConnectRetry.Std(), 1),
		IdleHoldTimeAfterReset: secs(t.IdleHoldTimeAfterReset.Std(), 1),
	}}
}

// unicastFamilies enables IPv4 and IPv6 unicast on a session (IPv6 routes travel over
// the IPv4 sessions with IPv6 next-hops).
func unicastFamilies() []*api.AfiSafi {
	var out []*api.AfiSafi
	for _, afi := range []api.Family_Afi{api.Family_AFI_IP, api.Family_AFI_IP6} {
		out = append(out, &api.AfiSafi{Config: &api.AfiSafiConfig{
			Family:  &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST},
			Enabled: true,
		}})
	}
	return out
}

// peer builds the GoBGP neighbor. The router is passive: the nodes dial it, so there
// is never a connection collision (GoBGP has no collision handling).
func (r *Router) peer(n Neighbor) *api.Peer {
	p := &api.Peer{
		Conf:   &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN, Description: n.Name},
		Timers: r.timers(),
		Transport: &api.Transport{
			LocalAddress: r.cfg.Address.String(),
			PassiveMode:  true,
		},
		AfiSafis: unicastFamilies(),
	}
	if n.BFD != nil && n.BFD.Multihop && n.ASN != r.cfg.ASN {
		// A node with multi-hop BFD is an ebgpMultiHop peer: the ToR's
		// side of the session is multi-hop too, as on a real router.
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if r.cfg.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: gracefulRestartTime}
		for _, af := range p.AfiSafis {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
	}
	return p
}

// gracefulRestartTime is how long, in seconds, a helper keeps a restarting
// node's routes.
const gracefulRestartTime = 120

const dynamicGroup = "dynamic-nodes"

func (r *Router) addDynamic(ctx context.Context) error {
	err := r.bgp.AddPeerGroup(ctx, &api.AddPeerGroupRequest{PeerGroup: &api.PeerGroup{
		Conf:      &api.PeerGroupConf{PeerGroupName: dynamicGroup, PeerAsn: r.cfg.DynamicASN},
		Timers:    r.timers(),
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis:  unicastFamilies(),
	}})
	if err != nil {
		return fmt.Errorf("router %s: add peer group: %w", r.cfg.Name, err)
	}
	err = r.bgp.AddDynamicNeighbor(ctx, &api.AddDynamicNeighborRequest{DynamicNeighbor: &api.DynamicNeighbor{
		Prefix: r.cfg.DynamicRange.String(), PeerGroup: dynamicGroup,
	}})
	if err != nil {
		return fmt.Errorf("router %s: add dynamic neighbors %v: %w", r.cfg.Name, r.cfg.DynamicRange, err)
	}
	return nil
}

// watch subscribes to best-path (multipath) and peer-state events.
func (r *Router) watch(ctx context.Context) error {
	err := r.bgp.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}},
	}}, func(ev *api.WatchEventResponse) {
		if t := ev.GetTable(); t != nil {
			r.onBest(t.Paths)
		}
	})
	if err != nil {
		return fmt.Errorf("router %s: watch best paths: %w", r.cfg.Name, err)
	}
	err = r.bgp.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(ev *api.WatchEventResponse) {
		if p := ev.GetPeer(); p != nil && p.Type == api.WatchEventResponse_PeerEvent_STATE {
			r.onPeer(p.Peer)
		}
	})
	if err != nil {
		return fmt.Errorf("router %s: watch peers: %w", r.cfg.Name, err)
	}
	return nil
}

// onBest applies one best-path event: every prefix in it carries its full new ECMP set
// (or one withdrawn path when the set became empty).
func (r *Router) onBest(paths []*api.Path) {
	at := r.now()
	eps := make([]rib.EventPath, 0, len(paths))
	for _, p := range paths {
		ep, err := eventPath(p)
		if err != nil {
			r.log.Warn("skip path", "err", err)
			continue
		}
		eps = append(eps, ep)
	}
	changes := r.rib.Apply(at, rib.Group(eps))
	r.met.observe(r.rib, changes)
	for _, c := range changes {
		r.log.Debug("ecmp change", "prefix", c.Prefix, "kind", c.Kind, "old", c.Old, "new", c.New)
	}
	if r.cfg.FIB && len(changes) > 0 {
		r.fibMu.Lock()
		for _, c := range changes {
			r.fibDirty[c.Prefix] = struct{}{}
		}
		r.fibMu.Unlock()
		select {
		case r.fibKick <- struct{}{}:
		default:
		}
	}
}

// markAllDirty queues every prefix of the RIB for FIB programming.
func (r *Router) markAllDirty() {
	sets := r.rib.All()
	r.fibMu.Lock()
	for _, s := range sets {
		r.fibDirty[s.Prefix] = struct{}{}
	}
	r.fibMu.Unlock()
	select {
	case r.fibKick <- struct{}{}:
	default:
	}
}

// resyncOnLinkUp reprograms the whole FIB when an interface comes back up: the kernel
// drops routes through an interface that goes down and never restores them.
func (r *Router) resyncOnLinkUp(ctx context.Context) {
	ch := make(chan netlink.LinkUpdate, 16)
	if err := netlink.LinkSubscribe(ch, ctx.Done()); err != nil {
		r.log.Warn("link subscribe", "err", err)
		return
	}
	up := map[int]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			isUp := u.Attrs().OperState == netlink.OperUp
			was, known := up[u.Attrs().Index]
			up[u.Attrs().Index] = isUp
			if isUp && known && !was {
				r.log.Info("link up: resyncing FIB", "link", u.Attrs().Name)
				r.markAllDirty()
			}
		}
	}
}

// fibLoop programs the current set of every dirty prefix; bursts coalesce.
func (r *Router) fibLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.fibKick:
		}
		r.fibMu.Lock()
		dirty := r.fibDirty
		r.fibDirty = map[netip.Prefix]struct{}{}
		r.fibMu.Unlock()
		for p := range dirty {
			set, ok := r.rib.Get(p)
			var err error
			if ok {
				err = r.fib.Replace(p, set.NextHops())
			} else {
				err = r.fib.Delete(p)
			}
			if err != nil {
				r.met.fibErrors.Inc()
				r.log.Error("fib", "err", err)
				continue
			}
			r.fibMu.Lock()
			if ok {
				r.fibRoutes[p] = control.FIBRoute{Prefix: p, NextHops: set.NextHops(), At: r.now()}
			} else {
				delete(r.fibRoutes, p)
			}
			r.fibMu.Unlock()
		}
	}
}

func sessionStateName(s api.PeerState_SessionState) string {
	return strings.ToLower(s.String())
}

func (r *Router) onPeer(p *api.Peer) {
	addr, err := netip.ParseAddr(p.GetState().GetNeighborAddress())
	if err != nil {
		return
	}
	state := p.GetState().GetSessionState()
	r.peerMu.Lock()
	old, known := r.peerState[addr]
	r.peerState[addr] = state
	r.peerMu.Unlock()
	if known && old == state {
		return
	}
	oldName, newName := "unknown", sessionStateName(state)
	if known {
		oldName = sessionStateName(old)
	}
	r.met.peerChanges.WithLabelValues(newName).Inc()
	r.events.add(control.Event{At: r.now(), Kind: control.EventBGP, Peer: addr, Old: oldName, New: newName})
	r.log.Info("bgp neighbor state", "peer", addr, "old", oldName, "new", newName)
	if idlehold.Entered(old, p) {
		go r.renewPeer(addr)
	}
}

// renewPeer replaces a static neighbor whose session or connection just
// dropped with a fresh one (package idlehold), so the router accepts the
// node's next connection at once, as a real router does.
func (r *Router) renewPeer(addr netip.Addr) {
	r.peerMu.Lock()
	n, ok := r.neighbors[addr]
	r.peerMu.Unlock()
	if !ok {
		return // dynamic neighbors are removed when their session drops
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	renewed, err := idlehold.Renew(ctx, r.bgp, r.peer(n))
	if err != nil {
		r.log.Warn("renew neighbor", "peer", addr, "err", err)
		return
	}
	if renewed {
		r.log.Info("bgp neighbor renewed after its session dropped", "peer", addr)
	}
}

func (r *Router) bfdLoop(ctx context.Context, ch <-chan bfdrun.Change) {
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-ch:
			if !ok {
				return
			}
			detail := c.Diag
			if c.New == "Down" && c.Old == "Up" {
				detail += "; remote " + c.RemoteState + ": " + c.RemoteDiag
			}
			r.events.add(control.Event{At: c.At, Kind: control.EventBFD, Peer: c.Peer, Old: c.Old, New: c.New, Detail: detail})
			r.log.Info("bfd state", "peer", c.Peer, "old", c.Old, "new", c.New, "diag", c.Diag,
				"remoteState", c.RemoteState, "remoteDiag", c.RemoteDiag, "pathFailure", c.PathFailure)
			if c.PathFailure {
				// Like a real router: a BFD-detected path failure tears the BGP
				// session down at once. An AdminDown (ours or the peer's) does
				// not (RFC 5882 section 3.2).
				r.met.bfdResets.Inc()
				err := r.bgp.ResetPeer(ctx, &api.ResetPeerRequest{Address: c.Peer.String(), Communication: "BFD down"})
				if err != nil {
					r.log.Warn("reset peer after bfd down", "peer", c.Peer, "err", err)
				}
			}
		}
	}
}

// Neighbors lists the BGP neighbors with their state.
func (r *Router) Neighbors(ctx context.Context) ([]control.Neighbor, error) {
	names := map[netip.Addr]string{}
	r.peerMu.Lock()
	for a, n := range r.neighbors {
		names[a] = n.Name
	}
	r.peerMu.Unlock()
	bfdState := map[netip.Addr]string{}
	if r.bfd != nil {
		for _, s := range r.bfd.Sessions() {
			bfdState[s.Peer] = s.State
		}
	}
	var out []control.Neighbor
	err := r.bgp.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		n := control.Neighbor{
			Name:                names[addr],
			Address:             addr,
			ASN:                 p.GetConf().GetPeerAsn(),
			State:               sessionStateName(p.GetState().GetSessionState()),
			AdminDown:           p.GetState().GetAdminState() != api.PeerState_UP,
			Dynamic:             p.GetConf().GetPeerGroup() == dynamicGroup,
			MsgIn:               p.GetState().GetMessages().GetReceived().GetTotal(),
			MsgOut:              p.GetState().GetMessages().GetSent().GetTotal(),
			BFD:                 bfdState[addr],
			HoldTime:            time.Duration(p.GetTimers().GetState().GetNegotiatedHoldTime()) * time.Second,
			ConfiguredHoldTime:  time.Duration(p.GetTimers().GetConfig().GetHoldTime()) * time.Second,
			ConfiguredKeepalive: time.Duration(p.GetTimers().GetConfig().GetKeepaliveInterval()) * time.Second,
		}
		if n.ASN == 0 {
			n.ASN = p.GetState().GetPeerAsn()
		}
		if ts := p.GetTimers().GetState(); ts != nil {
			if n.State == "established" && ts.GetUptime() != nil {
				n.Since = ts.GetUptime().AsTime()
			} else if ts.GetDowntime() != nil && ts.GetDowntime().GetSeconds() > 0 {
				n.Since = ts.GetDowntime().AsTime()
			}
		}
		for _, af := range p.GetAfiSafis() {
			if st := af.GetState(); st != nil {
				n.Received += st.GetReceived()
				n.Accepted += st.GetAccepted()
			}
		}
		out = append(out, n)
	})
	slices.SortFunc(out, func(a, b control.Neighbor) int { return a.Address.Compare(b.Address) })
	return out, err
}

// AddNeighbor configures a neighbor (and its BFD session) on the running router.
func (r *Router) AddNeighbor(ctx context.Context, n Neighbor) error {
	if !n.Address.IsValid() || n.ASN == 0 {
		return fmt.Errorf("router %s: neighbor needs an address and an asn", r.cfg.Name)
	}
	if err := r.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: r.peer(n)}); err != nil {
		return fmt.Errorf("router %s: add neighbor %s: %w", r.cfg.Name, n.Address, err)
	}
	if n.BFD != nil {
		if err := r.bfd.Add(r.cfg.Address, n.Address, *n.BFD); err != nil {
			return fmt.Errorf("router %s: bfd peer %s: %w", r.cfg.Name, n.Address, err)
		}
	}
	r.peerMu.Lock()
	r.neighbors[n.Address] = n
	r.peerMu.Unlock()
	return nil
}

// DeleteNeighbor removes a neighbor (NOTIFICATION Cease) and its BFD session.
func (r *Router) DeleteNeighbor(ctx context.Context, addr netip.Addr) error {
	r.peerMu.Lock()
	n, ok := r.neighbors[addr]
	delete(r.neighbors, addr)
	r.peerMu.Unlock()
	if ok && n.BFD != nil {
		if err := r.bfd.Remove(r.cfg.Address, addr); err != nil {
			r.log.Warn("remove bfd peer", "peer", addr, "err", err)
		}
	}
	if err := r.bgp.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("router %s: delete neighbor %s: %w", r.cfg.Name, addr, err)
	}
	return nil
}

// SetNeighborAdmin disables (graceful shutdown with NOTIFICATION) or enables a neighbor.
// A static neighbor is enabled as a fresh one (package idlehold), which takes
// the node's next connection at once.
func (r *Router) SetNeighborAdmin(ctx context.Context, addr netip.Addr, enable bool, communication string) error {
	r.adminMu.Lock()
	defer r.adminMu.Unlock()
	if enable {
		r.peerMu.Lock()
		n, static := r.neighbors[addr]
		r.peerMu.Unlock()
		if !static {
			return r.bgp.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr.String()})
		}
		if err := idlehold.Enable(ctx, r.bgp, r.peer(n)); err != nil {
			return fmt.Errorf("router %s: enable neighbor %s: %w", r.cfg.Name, addr, err)
		}
		return nil
	}
	if err := idlehold.Disable(ctx, r.bgp, addr.String(), communication); err != nil {
		return fmt.Errorf("router %s: disable neighbor %s: %w", r.cfg.Name, addr, err)
	}
	return nil
}

// SetBFDAdmin shuts the BFD session to a neighbor administratively (the
// neighbor receives AdminDown; the BGP session stays up) or enables it again.
func (r *Router) SetBFDAdmin(addr netip.Addr, enable bool) error {
	if err := r.bfd.SetAdminDown(r.cfg.Address, addr, !enable); err != nil {
		return fmt.Errorf("router %s: bfd admin %s: %w", r.cfg.Name, addr, err)
	}
	r.log.Info("bfd admin state", "peer", addr, "enabled", enable)
	return nil
}

// MuteBFD stops (or resumes) sending BFD packets to a neighbor while still
// receiving its packets: a one-way path failure as the neighbor sees it.
func (r *Router) MuteBFD(addr netip.Addr, muted bool) error {
	if err := r.bfd.Mute(r.cfg.Address, addr, muted); err != nil {
		return fmt.Errorf("router %s: bfd mute %s: %w", r.cfg.Name, addr, err)
	}
	r.log.Info("bfd mute", "peer", addr, "muted", muted)
	return nil
}

// FIBRoutes lists the routes programmed into the kernel.
func (r *Router) FIBRoutes() []control.FIBRoute {
	r.fibMu.Lock()
	defer r.fibMu.Unlock()
	out := make([]control.FIBRoute, 0, len(r.fibRoutes))
	for _, v := range r.fibRoutes {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b control.FIBRoute) int { return rib.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}
