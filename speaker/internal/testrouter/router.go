// Package testrouter is a BGP router for tests and benchmarks: an embedded GoBGP
// server run as a separate process (GoBGP keeps best-path options in package globals,
// so a router must not share a process with the speaker under test). It prints every
// received route and session change as a JSON line with a wall-clock timestamp; Start
// runs it (optionally inside a network namespace) and keeps the routes it reports.
package testrouter

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// EnvVar carries the router's JSON Config to the child process.
const EnvVar = "ECMPLB_TESTROUTER"

// Neighbor is one BGP neighbor of the router (always passive: the speaker dials).
type Neighbor struct {
	Address  string `json:"address"`
	ASN      uint32 `json:"asn"`
	Password string `json:"password,omitempty"` // TCP MD5
	// GracefulRestart makes the router a graceful-restart helper for this
	// neighbor (RFC 4724, restart time 120 s): a session that ends without a
	// NOTIFICATION leaves its routes in place, stale, until the neighbor is
	// back and sends End-of-RIB, or the restart time runs out.
	GracefulRestart bool `json:"gracefulRestart,omitempty"`
}

// Config configures a router process.
type Config struct {
	ASN       uint32     `json:"asn"`
	RouterID  string     `json:"routerID"`
	Listen    []string   `json:"listen"`
	Port      int32      `json:"port"`
	Neighbors []Neighbor `json:"neighbors"`
	// Originate are IPv4 prefixes the router announces itself (to check that the
	// speaker imports nothing).
	Originate []string `json:"originate,omitempty"`
	// OriginateHosts announces Count consecutive /32s from First as well: a big
	// table without a config too big for the environment.
	OriginateHosts *HostRange `json:"originateHosts,omitempty"`
}

// HostRange is Count consecutive IPv4 addresses starting at First.
type HostRange struct {
	First string `json:"first"`
	Count int    `json:"count"`
}

// prefixes returns every prefix the router originates.
func (c Config) prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, o := range c.Originate {
		pfx, err := netip.ParsePrefix(o)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx)
	}
	if r := c.OriginateHosts; r != nil {
		a, err := netip.ParseAddr(r.First)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("originateHosts.first %q: not an IPv4 address", r.First)
		}
		for range r.Count {
			out = append(out, netip.PrefixFrom(a, 32))
			a = a.Next()
		}
	}
	return out, nil
}

// Event is one line of router output.
type Event struct {
	T     int64  `json:"t"` // unix nanoseconds when the router saw it
	Peer  string `json:"peer"`
	Ready bool   `json:"ready,omitempty"`
	State string `json:"state,omitempty"` // "up" or "down" for session changes
	// KeepsRoutes: a session going down does not by itself remove the
	// neighbor's routes (the router reports best paths, withdrawals included).
	KeepsRoutes bool     `json:"keepsRoutes,omitempty"`
	Prefix      string   `json:"prefix,omitempty"`
	Withdraw    bool     `json:"withdraw,omitempty"`
	NextHop     string   `json:"nexthop,omitempty"`
	LocalPref   uint32   `json:"lp,omitempty"`
	Communities []string `json:"communities,omitempty"`
	// Families are the address families the neighbor offered in its OPEN
	// (multiprotocol capabilities, e.g. "ipv6-unicast"), reported once per
	// established session after its "up" event.
	Families []string `json:"families,omitempty"`
}

// MaybeRun runs the router and exits if this process was started as one (EnvVar set);
// otherwise it returns at once. Call it first thing in TestMain or main.
func MaybeRun() {
	raw := os.Getenv(EnvVar)
	if raw == "" {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "testrouter: bad config:", err)
		os.Exit(2)
	}
	if err := run(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testrouter:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(cfg Config, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	w := bufio.NewWriterSize(out, 1<<16)
	var mu sync.Mutex
	emit := func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		b, _ := json.Marshal(e)
		w.Write(append(b, '\n'))
		w.Flush()
	}
	s := server.NewBgpServer()
	go s.Serve()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID, ListenPort: cfg.Port, ListenAddresses: cfg.Listen,
	}}); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Received routes as they arrive (adj-RIB-in); with a graceful-restart
	// neighbor the best paths instead, which is what keeps stale routes
	// through a restart and shows their flush (the adj-RIB-in reports
	// received UPDATEs only).
	view, graceful := api.WatchEventRequest_Table_Filter_ADJIN, false
	for _, n := range cfg.Neighbors {
		if n.GracefulRestart {
			view, graceful = api.WatchEventRequest_Table_Filter_BEST, true
		}
	}
	err := s.WatchEvent(wctx, &api.WatchEventRequest{
		Peer:  &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{{Type: view}}},
	}, func(r *api.WatchEventResponse) {
		now := time.Now().UnixNano()
		if p := r.GetPeer(); p != nil && p.Peer != nil && p.Peer.State != nil && p.Type == api.WatchEventResponse_PeerEvent_STATE {
			st := "down"
			if p.Peer.State.SessionState == api.PeerState_ESTABLISHED {
				st = "up"
			}
			emit(Event{T: now, Peer: p.Peer.State.NeighborAddress, State: st, KeepsRoutes: graceful})
			if st == "up" {
				// Not from this callback: it runs on the server's event stream.
				go emitFamilies(ctx, s, p.Peer.State.NeighborAddress, emit)
			}
		}
		if t := r.GetTable(); t != nil {
			for _, p := range t.Paths {
				emit(pathEvent(now, p))
			}
		}
	})
	if err != nil {
		return err
	}
	for _, n := range cfg.Neighbors {
		p := &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: n.Address, PeerAsn: n.ASN, AuthPassword: n.Password},
			Transport: &api.Transport{PassiveMode: true},
			Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 90, KeepaliveInterval: 30, IdleHoldTimeAfterReset: 1}},
			AfiSafis: []*api.AfiSafi{
				{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
				{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			},
		}
		if n.GracefulRestart {
			p.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: 120}
			for _, af := range p.AfiSafis {
				af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
			}
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			return err
		}
	}
	originate, err := cfg.prefixes()
	if err != nil {
		return err
	}
	for _, pfx := range originate {
		p, err := apiutil.NewPath(bgp.NewIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String()), false,
			[]bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("0.0.0.0")}, time.Now())
		if err != nil {
			return err
		}
		if _, err := s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p}); err != nil {
			return err
		}
	}
	emit(Event{T: time.Now().UnixNano(), Ready: true})
	<-ctx.Done()
	cancel()
	s.Stop()
	return nil
}

// emitFamilies reports the multiprotocol capabilities neighbor sent in its OPEN.
func emitFamilies(ctx context.Context, s *server.BgpServer, neighbor string, emit func(Event)) {
	var fams []string
	err := s.ListPeer(ctx, &api.ListPeerRequest{Address: neighbor}, func(p *api.Peer) {
		caps, err := apiutil.UnmarshalCapabilities(p.GetState().GetRemoteCap())
		if err != nil {
			return
		}
		for _, c := range caps {
			if mp, ok := c.(*bgp.CapMultiProtocol); ok {
				fams = append(fams, mp.CapValue.String())
			}
		}
	})
	if err == nil && len(fams) > 0 {
		emit(Event{T: time.Now().UnixNano(), Peer: neighbor, Families: fams})
	}
}

func pathEvent(now int64, p *api.Path) Event {
	e := Event{T: now, Peer: p.NeighborIp, Withdraw: p.IsWithdraw}
	if nlri, err := apiutil.GetNativeNlri(p); err == nil {
		e.Prefix = nlri.String()
	}
	attrs, _ := apiutil.GetNativePathAttributes(p)
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			e.NextHop = a.Value.String()
		case *bgp.PathAttributeMpReachNLRI:
			e.NextHop = a.Nexthop.String()
		case *bgp.PathAttributeLocalPref:
			e.LocalPref = a.Value
		case *bgp.PathAttributeCommunities:
			for _, v := range a.Value {
				e.Communities = append(e.Communities, fmt.Sprintf("%d:%d", v>>16, v&0xFFFF))
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, v := range a.Values {
				e.Communities = append(e.Communities, fmt.Sprintf("large:%d:%d:%d", v.ASN, v.LocalData1, v.LocalData2))
			}
		}
	}
	return e
}

// Route is what the router holds for one (neighbor, prefix).
type Route struct {
	NextHop     string
	LocalPref   uint32
	Communities []string
	At          time.Time // when the router received the current version
}

// Router is a running router process and the routes it has reported.
type Router struct {
	cmd *exec.Cmd

	mu      sync.Mutex
	changed *sync.Cond
	routes  map[string]map[string]Route // peer → prefix → route
	up      map[string]bool
	fams    map[string][]string // peer → families it offered in its last session
	events  []Event
	keep    bool
	exited  error
	done    bool
	// OnEvent, if set before Start returns events, is called for every event.
	onEvent func(Event)
}

// Options for Start.
type Options struct {
	// NetNS: run inside this named network namespace (ip netns exec).
	NetNS string
	// KeepEvents keeps every event for Events().
	KeepEvents bool
	// OnEvent is called (on the reader goroutine) for every event.
	OnEvent func(Event)
	// Stderr receives the router's diagnostics (nil: discarded).
	Stderr io.Writer
}

// Start runs a router process with cfg, re-executing the current binary (which must
// call MaybeRun early). It returns once the router listens.
func Start(cfg Config, o Options) (*Router, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(cfg)
	args := []string{self}
	if o.NetNS != "" {
		args = append([]string{"ip", "netns", "exec", o.NetNS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), EnvVar+"="+string(raw))
	cmd.Stderr = o.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &Router{cmd: cmd, routes: map[string]map[string]Route{}, up: map[string]bool{}, fams: map[string][]string{}, keep: o.KeepEvents, onEvent: o.OnEvent}
	r.changed = sync.NewCond(&r.mu)
	ready := make(chan struct{})
	go r.read(stdout, ready)
	select {
	case <-ready:
		return r, nil
	case <-time.After(20 * time.Second):
		r.Stop()
		return nil, fmt.Errorf("testrouter: not ready after 20s")
	}
}

func (r *Router) read(stdout io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if e.Ready {
			close(ready)
			continue
		}
		if r.onEvent != nil {
			r.onEvent(e)
		}
		r.mu.Lock()
		if r.keep {
			r.events = append(r.events, e)
		}
		switch {
		case len(e.Families) > 0:
			r.fams[e.Peer] = e.Families
		case e.State == "up":
			r.up[e.Peer] = true
		case e.State == "down":
			r.up[e.Peer] = false
			delete(r.fams, e.Peer)
			if !e.KeepsRoutes {
				delete(r.routes, e.Peer)
			}
		case e.Withdraw:
			delete(r.routes[e.Peer], e.Prefix)
		case e.Prefix != "":
			m := r.routes[e.Peer]
			if m == nil {
				m = map[string]Route{}
				r.routes[e.Peer] = m
			}
			m[e.Prefix] = Route{NextHop: e.NextHop, LocalPref: e.LocalPref, Communities: e.Communities, At: time.Unix(0, e.T)}
		}
		r.changed.Broadcast()
		r.mu.Unlock()
	}
	err := r.cmd.Wait()
	r.mu.Lock()
	r.done, r.exited = true, err
	r.changed.Broadcast()
	r.mu.Unlock()
}

// Routes returns a copy of the routes received from peer.
func (r *Router) Routes(peer string) map[string]Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Route{}
	for k, v := range r.routes[peer] {
		out[k] = v
	}
	return out
}

// Up tells whether the session with peer is established.
func (r *Router) Up(peer string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.up[peer]
}

// Families returns the address families peer offered in the OPEN of its
// established session (nil: not known yet, or no session), sorted as sent.
func (r *Router) Families(peer string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.fams[peer]...)
}

// WaitFamilies waits until the established session with peer has reported
// exactly the families want (in the order the neighbor offered them).
func (r *Router) WaitFamilies(timeout time.Duration, peer string, want ...string) error {
	err := r.WaitFor(timeout, func(map[string]map[string]Route, map[string]bool) bool {
		return slices.Equal(r.fams[peer], want)
	})
	if err != nil {
		return fmt.Errorf("families offered by %s %v, want %v: %w", peer, r.Families(peer), want, err)
	}
	return nil
}

// Events returns the events seen so far (Options.KeepEvents).
func (r *Router) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// WaitFor waits until cond (called with the lock held, over peer → prefix → route)
// holds, or the timeout passes.
func (r *Router) WaitFor(timeout time.Duration, cond func(routes map[string]map[string]Route, up map[string]bool) bool) error {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, func() { r.mu.Lock(); r.changed.Broadcast(); r.mu.Unlock() })
	defer t.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for !cond(r.routes, r.up) {
		if r.done {
			return fmt.Errorf("testrouter exited: %v", r.exited)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		r.changed.Wait()
	}
	return nil
}

// Stop terminates the router process and waits for it.
func (r *Router) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() {
		r.mu.Lock()
		for !r.done {
			r.changed.Wait()
		}
		r.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
	}
}
