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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/frrlab"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// FRR is a ToR of flavour "frr": Debian's FRR (zebra, bfdd, bgpd) in the ToR's
// namespace, configured from the same Config as the GoBGP router, behind the
// same control API. The process (`fabric router` for a config with flavour frr)
// runs the daemons as its children and stops them when it stops.
//
// Where the data comes from:
//   - ECMP sets and their History: the kernel FIB of the namespace, where zebra
//     installs bgpd's multipath routes, read through a netlink route
//     subscription. A Change's At is when this process received the kernel's
//     route notification, i.e. within a millisecond or so of the moment packets
//     started to follow the new next-hop set (zebra programs the kernel after
//     bgpd's decision; this view is what forwards). Path attributes
//     (communities, large communities, local-pref, MED, AS path, peer) come from
//     bgpd's JSON, read for the prefixes whose version changed.
//   - Neighbors, BFD sessions and Events: bgpd's and bfdd's JSON over their vty
//     sockets, polled every frrPollInterval. An Event's At is the poll that saw
//     the new state: at most frrPollInterval (plus a sub-millisecond query) after
//     the change.
type FRR struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	rib    *rib.RIB
	events *eventLog
	reg    *prometheus.Registry
	met    *metrics
	frr    *frrlab.FRR
	bgpd   *frrlab.VTY
	bfdd   *frrlab.VTY
	up     chan struct{}

	mu        sync.Mutex
	neighbors map[netip.Addr]Neighbor
	peerASN   map[netip.Addr]uint32
	bgpState  map[netip.Addr]string
	bfdState  map[netip.Addr]string
	bfdChange map[netip.Addr]time.Time
	muted     map[netip.Addr]bool

	// kernel state (kmu): the routes zebra installed, and their changes since
	// the last RIB sync, oldest first.
	kmu      sync.Mutex
	kernel   map[netip.Prefix]control.FIBRoute
	kchanges []kernelChange
	kick     chan struct{}
	// RIB loop only: bgpd's table fingerprint and ECMP paths of each prefix,
	// and when all details were last read.
	fingerprints map[netip.Prefix]string
	bgpPaths     map[netip.Prefix][]rib.Path
	lastFull     time.Time
}

const (
	frrPollInterval = 50 * time.Millisecond
	// frrAttrInterval is how often bgpd's table is checked for attribute
	// changes that left the kernel's next-hops alone.
	frrAttrInterval = 500 * time.Millisecond
	// frrFullInterval is how often the detail of every prefix is read (the
	// table does not show communities).
	frrFullInterval = 2 * time.Second
)

// NewFRR returns an FRR ToR for cfg; Run starts it.
func NewFRR(cfg Config, log *slog.Logger) *FRR {
	if log == nil {
		log = slog.Default()
	}
	r := &FRR{
		cfg: cfg, log: log.With("router", cfg.Name, "flavour", topology.FlavourFRR), now: time.Now,
		rib: rib.New(0), events: newEventLog(10000), up: make(chan struct{}),
		neighbors: map[netip.Addr]Neighbor{}, peerASN: map[netip.Addr]uint32{},
		bgpState: map[netip.Addr]string{}, bfdState: map[netip.Addr]string{},
		bfdChange: map[netip.Addr]time.Time{}, muted: map[netip.Addr]bool{},
		kernel: map[netip.Prefix]control.FIBRoute{},
		kick:   make(chan struct{}, 1), fingerprints: map[netip.Prefix]string{}, bgpPaths: map[netip.Prefix][]rib.Path{},
	}
	r.reg = prometheus.NewRegistry()
	r.met = newMetrics(r.reg, cfg.Name)
	for _, n := range cfg.Neighbors {
		r.neighbors[n.Address] = n
	}
	return r
}

// Run starts FRR and the control API and blocks until ctx is done or a daemon
// stops answering; then it stops the daemons (bgpd first, so the nodes see a
// NOTIFICATION) and removes their files and the mute table.
func (r *FRR) Run(ctx context.Context) (err error) {
	c := r.cfg
	if !c.FIB {
		return fmt.Errorf("router %s: the frr flavour always programs the kernel FIB (zebra); --no-fib is not supported", c.Name)
	}
	if c.NetNS == "" {
		return fmt.Errorf("router %s: the frr flavour needs the namespace name (netns) in its config", c.Name)
	}
	if !frrlab.Installed() {
		return fmt.Errorf("router %s: FRR is not installed (apt-get install -y frr)", c.Name)
	}
	// A router killed before (tor-restart after a crash) may have left daemons
	// and routes behind.
	frrlab.KillLeftovers(c.NetNS)
	if err := (KernelFIB{}).Flush(); err != nil {
		return fmt.Errorf("router %s: %w", c.Name, err)
	}
	_ = runNft(ctx, "", "delete", "table", "ip", nftMuteTable)
	if err := runNft(ctx, nftMuteScript(), "-f", "-"); err != nil {
		return fmt.Errorf("router %s: bfd mute table: %w", c.Name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = runNft(cctx, "", "delete", "table", "ip", nftMuteTable)
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	kctx, stopKernel := context.WithCancel(context.Background())
	defer stopKernel()
	if err := r.watchKernel(kctx, &wg); err != nil {
		return err
	}

	r.frr, err = frrlab.StartFRR(&netns.NS{Name: c.NetNS},
		frrlab.Daemon{Name: "zebra", Config: frrZebraConfig(c)},
		frrlab.Daemon{Name: "bfdd", Config: frrBFDConfig(c)},
		frrlab.Daemon{Name: "bgpd", Config: frrBGPConfig(c), Args: []string{"-l", c.Address.String()}})
	if err != nil {
		return fmt.Errorf("router %s: start frr: %w", c.Name, err)
	}
	r.frr.StopTimeout = time.Second
	defer func() {
		if cerr := r.frr.Close(); cerr != nil {
			r.log.Warn("stop frr", "err", cerr)
		}
	}()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if r.bgpd, err = frrlab.DialVTY(dctx, c.NetNS, "bgpd"); err != nil {
		return fmt.Errorf("router %s: %w", c.Name, err)
	}
	defer r.bgpd.Close()
	if r.bfdd, err = frrlab.DialVTY(dctx, c.NetNS, "bfdd"); err != nil {
		return fmt.Errorf("router %s: %w", c.Name, err)
	}
	defer r.bfdd.Close()

	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	failed := make(chan error, 2)
	if err := r.poll(dctx); err != nil {
		return fmt.Errorf("router %s: %w", c.Name, err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); failed <- r.pollLoop(loopCtx) }()
	go func() { defer wg.Done(); r.ribLoop(loopCtx) }()

	_ = os.Remove(c.ControlSocket)
	ln, err := net.Listen("unix", c.ControlSocket)
	if err != nil {
		return fmt.Errorf("router %s: control socket: %w", c.Name, err)
	}
	srv := &http.Server{Handler: handler(r), ReadHeaderTimeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("control api", "err", err)
		}
	}()
	close(r.up)
	r.log.Info("router running", "address", c.Address, "asn", c.ASN, "neighbors", len(c.Neighbors),
		"control", c.ControlSocket, "pathspace", c.NetNS)

	var runErr error
	select {
	case <-ctx.Done():
		r.log.Info("router stopping")
	case runErr = <-failed:
		runErr = fmt.Errorf("router %s: %w", c.Name, runErr)
		r.log.Error("router stopping", "err", runErr)
	}
	stopLoops()
	shutCtx, cancelShut := context.WithTimeout(context.Background(), time.Second)
	defer cancelShut()
	_ = srv.Shutdown(shutCtx)
	_ = os.Remove(c.ControlSocket)
	return runErr
}

// pollLoop polls neighbor and BFD states until ctx ends; it gives up (and the
// router stops, so the harness sees a dead router rather than a stale view)
// when bgpd or bfdd has not answered for 3 s.
func (r *FRR) pollLoop(ctx context.Context) error {
	t := time.NewTicker(frrPollInterval)
	defer t.Stop()
	lastOK := r.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		err := r.poll(qctx)
		cancel()
		switch {
		case err == nil:
			lastOK = r.now()
		case ctx.Err() != nil:
			return nil
		case r.now().Sub(lastOK) > 3*time.Second:
			return fmt.Errorf("frr stopped answering: %w", err)
		default:
			r.log.Warn("poll frr", "err", err)
		}
	}
}

// poll reads bgpd's neighbors and bfdd's sessions once and logs their changes.
func (r *FRR) poll(ctx context.Context) error {
	nb, err := r.bgpd.Run(ctx, "show bgp neighbors json")
	if err != nil {
		return err
	}
	bf, err := r.bfdd.Run(ctx, "show bfd peers json")
	if err != nil {
		return err
	}
	at := r.now()
	ns, err := parseNeighbors([]byte(nb))
	if err != nil {
		return err
	}
	ps, err := parseBFDPeers([]byte(bf))
	if err != nil {
		return err
	}
	bgp, bfd := bgpStates(ns), bfdStates(ps)
	r.mu.Lock()
	bgpChanges := stateChanges(r.bgpState, bgp, "idle")
	bfdChanges := stateChanges(r.bfdState, bfd, "AdminDown")
	r.bgpState, r.bfdState = bgp, bfd
	for a, n := range ns {
		r.peerASN[a] = n.RemoteAs
	}
	for _, ch := range bfdChanges {
		r.bfdChange[ch.Peer] = at
	}
	r.mu.Unlock()
	for _, ch := range bgpChanges {
		r.met.peerChanges.WithLabelValues(ch.New).Inc()
		r.events.add(control.Event{At: at, Kind: control.EventBGP, Peer: ch.Peer, Old: ch.Old, New: ch.New})
		r.log.Info("bgp neighbor state", "peer", ch.Peer, "old", ch.Old, "new", ch.New)
	}
	for _, ch := range bfdChanges {
		p := ps[ch.Peer]
		detail := p.Diagnostic
		if ch.New == "Down" && ch.Old == "Up" {
			detail += "; remote: " + p.RemoteDiagnostic
		}
		r.events.add(control.Event{At: at, Kind: control.EventBFD, Peer: ch.Peer, Old: ch.Old, New: ch.New, Detail: detail})
		r.log.Info("bfd state", "peer", ch.Peer, "old", ch.Old, "new", ch.New, "diag", p.Diagnostic, "remoteDiag", p.RemoteDiagnostic)
	}
	return nil
}

// ribLoop brings the RIB view up to date whenever the kernel's routes change,
// and every frrAttrInterval for attribute-only changes.
func (r *FRR) ribLoop(ctx context.Context) {
	t := time.NewTicker(frrAttrInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := r.syncRIB(qctx); err != nil && ctx.Err() == nil {
			r.log.Warn("rib sync", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
	}
}

// syncRIB reads bgpd's table and the detail of changed prefixes,
// then applies to the RIB every kernel change (each at its own time) and every
// prefix whose bgpd paths alone changed (now: attributes, the kernel's set is
// unchanged).
func (r *FRR) syncRIB(ctx context.Context) error {
	// Take the kernel's changes first: bgpd decided before zebra installed, so
	// its state is at least as new as the kernel's.
	r.kmu.Lock()
	kchanges := r.kchanges
	r.kchanges = nil
	r.kmu.Unlock()
	requeue := func() {
		r.kmu.Lock()
		r.kchanges = append(kchanges, r.kchanges...)
		r.kmu.Unlock()
	}

	kernelChanged := map[netip.Prefix]bool{}
	for _, c := range kchanges {
		kernelChanged[c.Prefix] = true
	}
	full := r.now().Sub(r.lastFull) >= frrFullInterval
	bgpChanged := map[netip.Prefix]bool{}
	seen := map[netip.Prefix]bool{}
	for _, af := range []string{"ipv4", "ipv6"} {
		out, err := r.bgpd.Run(ctx, "show bgp "+af+" unicast json")
		if err != nil {
			requeue()
			return err
		}
		fps, err := parseTableFingerprints([]byte(out))
		if err != nil {
			requeue()
			return err
		}
		for p, fp := range fps {
			seen[p] = true
			if old, ok := r.fingerprints[p]; ok && old == fp && !kernelChanged[p] && !full {
				continue
			}
			d, err := r.bgpd.Run(ctx, fmt.Sprintf("show bgp %s unicast %s json", af, p))
			if err != nil {
				requeue()
				return err
			}
			_, paths, ok, err := parseDetail([]byte(d), r.cfg.ASN, r.asnOf)
			if err != nil {
				requeue()
				return err
			}
			if !ok {
				paths = nil
			}
			// Applying unchanged paths records nothing.
			bgpChanged[p] = true
			r.fingerprints[p] = fp
			r.bgpPaths[p] = paths
		}
	}
	if full {
		r.lastFull = r.now()
	}
	for p := range r.fingerprints {
		if !seen[p] {
			delete(r.fingerprints, p)
			delete(r.bgpPaths, p)
			bgpChanged[p] = true
		}
	}
	changes := applyFRR(r.rib, kchanges, bgpChanged, r.bgpPaths, r.now())
	r.met.observe(r.rib, changes)
	for _, c := range changes {
		r.log.Debug("ecmp change", "prefix", c.Prefix, "kind", c.Kind, "old", c.Old, "new", c.New)
	}
	return nil
}

// applyFRR brings an FRR ToR's RIB up to date. Every kernel change is applied
// at its own time, so History dates each next-hop change when the kernel made
// it; the prefixes whose bgpd paths alone changed are applied at now with the
// next-hops last applied (later kernel changes are queued with their own
// time), which updates their attributes and records no change. Pure.
func applyFRR(rb *rib.RIB, kchanges []kernelChange, bgpChanged map[netip.Prefix]bool, bgpPaths map[netip.Prefix][]rib.Path, now time.Time) []rib.Change {
	var out []rib.Change
	done := map[netip.Prefix]bool{}
	for _, c := range kchanges {
		out = append(out, rb.Apply(c.At, []rib.Update{{Prefix: c.Prefix, Paths: mergePaths(c.NextHops, bgpPaths[c.Prefix])}})...)
		done[c.Prefix] = true
	}
	prefixes := make([]netip.Prefix, 0, len(bgpChanged))
	for p := range bgpChanged {
		if !done[p] {
			prefixes = append(prefixes, p)
		}
	}
	slices.SortFunc(prefixes, rib.ComparePrefix)
	for _, p := range prefixes {
		var hops []netip.Addr
		if s, ok := rb.Get(p); ok {
			hops = s.NextHops()
		}
		out = append(out, rb.Apply(now, []rib.Update{{Prefix: p, Paths: mergePaths(hops, bgpPaths[p])}})...)
	}
	return out
}

func (r *FRR) asnOf(a netip.Addr) uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.neighbors[a]; ok {
		return n.ASN
	}
	return r.peerASN[a]
}

// backend methods.

func (r *FRR) name() string                           { return r.cfg.Name }
func (r *FRR) started() <-chan struct{}               { return r.up }
func (r *FRR) ribView() *rib.RIB                      { return r.rib }
func (r *FRR) eventsAfter(seq uint64) []control.Event { return r.events.after(seq) }
func (r *FRR) registry() *prometheus.Registry         { return r.reg }

func (r *FRR) bfdPeers(ctx context.Context) (map[netip.Addr]frrBFDPeer, error) {
	out, err := r.bfdd.Run(ctx, "show bfd peers json")
	if err != nil {
		return nil, err
	}
	return parseBFDPeers([]byte(out))
}

func (r *FRR) bfdSessions(ctx context.Context) ([]control.BFDSession, error) {
	ps, err := r.bfdPeers(ctx)
	if err != nil {
		return nil, err
	}
	out, err := r.bfdd.Run(ctx, "show bfd peers counters json")
	if err != nil {
		return nil, err
	}
	cs, err := parseBFDCounters([]byte(out))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	last := make(map[netip.Addr]time.Time, len(r.bfdChange))
	for a, t := range r.bfdChange {
		last[a] = t
	}
	r.mu.Unlock()
	return controlBFD(ps, cs, last, r.now()), nil
}

// Neighbors lists bgpd's neighbors with their state.
func (r *FRR) Neighbors(ctx context.Context) ([]control.Neighbor, error) {
	out, err := r.bgpd.Run(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	ns, err := parseNeighbors([]byte(out))
	if err != nil {
		return nil, err
	}
	ps, err := r.bfdPeers(ctx)
	if err != nil {
		return nil, err
	}
	names := map[netip.Addr]string{}
	r.mu.Lock()
	for a, n := range r.neighbors {
		names[a] = n.Name
	}
	r.mu.Unlock()
	return controlNeighbors(ns, names, bfdStates(ps), r.now()), nil
}

// FIBRoutes lists the routes zebra installed in the namespace's kernel FIB.
func (r *FRR) FIBRoutes() []control.FIBRoute {
	r.kmu.Lock()
	defer r.kmu.Unlock()
	out := make([]control.FIBRoute, 0, len(r.kernel))
	for _, v := range r.kernel {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b control.FIBRoute) int { return rib.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// AddNeighbor configures a neighbor (and its BFD session) on the running bgpd
// and bfdd.
func (r *FRR) AddNeighbor(ctx context.Context, n Neighbor) error {
	if !n.Address.IsValid() || n.ASN == 0 {
		return fmt.Errorf("router %s: neighbor needs an address and an asn", r.cfg.Name)
	}
	if n.BFD != nil {
		if err := r.bfdd.Configure(ctx, append([]string{"bfd"}, frrBFDPeerLines(r.cfg.Address, n)...)...); err != nil {
			return fmt.Errorf("router %s: bfd peer %s: %w", r.cfg.Name, n.Address, err)
		}
	}
	lines := append([]string{fmt.Sprintf("router bgp %d", r.cfg.ASN)}, frrNeighborLines(r.cfg, n)...)
	if err := r.bgpd.Configure(ctx, lines...); err != nil {
		return fmt.Errorf("router %s: add neighbor %s: %w", r.cfg.Name, n.Address, err)
	}
	r.mu.Lock()
	r.neighbors[n.Address] = n
	r.mu.Unlock()
	return nil
}

// DeleteNeighbor removes a neighbor (bgpd sends a NOTIFICATION Cease) and its
// BFD session.
func (r *FRR) DeleteNeighbor(ctx context.Context, addr netip.Addr) error {
	r.mu.Lock()
	n, ok := r.neighbors[addr]
	delete(r.neighbors, addr)
	r.mu.Unlock()
	if !ok {
		// Not configured: a dynamic neighbor, which bgpd forgets once its
		// session is cleared.
		if _, err := r.bgpd.Run(ctx, "clear bgp "+addr.String()); err != nil {
			return fmt.Errorf("router %s: delete neighbor %s: %w", r.cfg.Name, addr, err)
		}
		return nil
	}
	if err := r.bgpd.Configure(ctx, fmt.Sprintf("router bgp %d", r.cfg.ASN), "no neighbor "+addr.String()); err != nil {
		return fmt.Errorf("router %s: delete neighbor %s: %w", r.cfg.Name, addr, err)
	}
	if n.BFD != nil {
		if err := r.bfdd.Configure(ctx, "bfd", "no "+frrBFDPeerLine(r.cfg.Address, n)); err != nil {
			r.log.Warn("remove bfd peer", "peer", addr, "err", err)
		}
	}
	return nil
}

// SetNeighborAdmin shuts a neighbor down (NOTIFICATION Cease with the
// communication as shutdown message) or enables it again.
func (r *FRR) SetNeighborAdmin(ctx context.Context, addr netip.Addr, enable bool, communication string) error {
	line := "no neighbor " + addr.String() + " shutdown"
	if !enable {
		line = "neighbor " + addr.String() + " shutdown"
		if m := frrOneLine(communication); m != "" {
			line += " message " + m
		}
	}
	if err := r.bgpd.Configure(ctx, fmt.Sprintf("router bgp %d", r.cfg.ASN), line); err != nil {
		return fmt.Errorf("router %s: neighbor %s admin: %w", r.cfg.Name, addr, err)
	}
	return nil
}

// bfdNeighbor returns the neighbor addr if it runs BFD with this router.
func (r *FRR) bfdNeighbor(addr netip.Addr) (Neighbor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.neighbors[addr]
	if !ok || n.BFD == nil {
		return Neighbor{}, fmt.Errorf("router %s: no bfd session with %s", r.cfg.Name, addr)
	}
	return n, nil
}

// SetBFDAdmin shuts the BFD session to a neighbor down administratively (bfdd
// sends AdminDown; the BGP session stays up, RFC 5882 3.2) or enables it again.
func (r *FRR) SetBFDAdmin(addr netip.Addr, enable bool) error {
	n, err := r.bfdNeighbor(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op := "shutdown"
	if enable {
		op = "no shutdown"
	}
	if err := r.bfdd.Configure(ctx, "bfd", frrBFDPeerLine(r.cfg.Address, n), op, "exit"); err != nil {
		return fmt.Errorf("router %s: bfd admin %s: %w", r.cfg.Name, addr, err)
	}
	r.log.Info("bfd admin state", "peer", addr, "enabled", enable)
	return nil
}

// MuteBFD stops (or resumes) sending BFD packets to a neighbor while still
// receiving its packets: a one-way path failure as the neighbor sees it.
func (r *FRR) MuteBFD(addr netip.Addr, muted bool) error {
	if _, err := r.bfdNeighbor(addr); err != nil {
		return err
	}
	if !addr.Is4() {
		return fmt.Errorf("router %s: bfd mute %s: only IPv4 sessions", r.cfg.Name, addr)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.muted[addr] == muted {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := runNft(ctx, "", nftMuteElement(addr, muted)...); err != nil {
		return fmt.Errorf("router %s: bfd mute %s: %w", r.cfg.Name, addr, err)
	}
	r.muted[addr] = muted
	r.log.Info("bfd mute", "peer", addr, "muted", muted)
	return nil
}
