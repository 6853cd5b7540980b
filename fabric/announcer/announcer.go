// Package announcer is a minimal BGP speaker for testing the fabric without the real
// ecmplb speaker: run in a node's namespace (`fabric announce --config FILE`), it dials
// the ToRs, announces /32s (or any prefixes) with the node's address as next-hop, can
// run BFD towards the ToRs, and takes announce/withdraw requests on a Unix socket.
package announcer

import (
	"context"
	"encoding/json"
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
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/internal/bfdrun"
	"github.com/ecmplb/ecmplb/fabric/internal/idlehold"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// Config describes one announcer.
type Config struct {
	Name    string     `json:"name"`
	Address netip.Addr `json:"address"`
	// Address6 is the next-hop of announced IPv6 prefixes (they travel over the IPv4
	// sessions); IPv6 prefixes cannot be announced without it.
	Address6 netip.Addr `json:"address6,omitzero"`
	ASN      uint32     `json:"asn"`
	// Peers are the routers to dial.
	Peers []Peer `json:"peers"`
	// Prefixes are announced at start.
	Prefixes []netip.Prefix `json:"prefixes,omitempty"`
	// ControlSocket is the Unix socket of the announce/withdraw API.
	ControlSocket string `json:"controlSocket"`
	// HoldTime of the sessions (whole seconds, default 9s); keepalive is a third.
	HoldTime topology.Duration `json:"holdTime,omitempty"`
	// BFD, when set, runs BFD towards every peer; a Down resets the BGP session.
	BFD *topology.BFDProfile `json:"bfd,omitempty"`
}

// Peer is a router the announcer dials.
type Peer struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
}

// Request is the body of POST /announce and POST /withdraw.
type Request struct {
	Prefixes []netip.Prefix `json:"prefixes"`
}

// Announcer is a running test speaker.
type Announcer struct {
	cfg Config
	log *slog.Logger
	bgp *server.BgpServer
	bfd bfdrun.Service

	mu        sync.Mutex
	announced map[netip.Prefix]bool
	started   chan struct{}
}

// New returns an announcer; Run starts it.
func New(cfg Config, log *slog.Logger) *Announcer {
	if cfg.HoldTime == 0 {
		cfg.HoldTime = topology.Duration(9 * time.Second)
	}
	return &Announcer{cfg: cfg, log: log.With("announcer", cfg.Name), announced: map[netip.Prefix]bool{}, started: make(chan struct{})}
}

// LoadConfig reads a JSON config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("announcer config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("announcer config %s: %w", path, err)
	}
	return c, nil
}

// Write stores the config as JSON.
func (c Config) Write(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Run speaks BGP until ctx is done.
func (a *Announcer) Run(ctx context.Context) error {
	bgpLog := gobgplog.New(a.log.With("component", "gobgp"), gobgplog.WithLevel(bgplog.WarnLevel))
	a.bgp = server.NewBgpServer(server.LoggerOption(bgpLog))
	go a.bgp.Serve()
	defer a.bgp.Stop()
	if err := a.bgp.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: a.cfg.ASN, RouterId: a.cfg.Address.String(), ListenPort: -1,
	}}); err != nil {
		return fmt.Errorf("announcer %s: start bgp: %w", a.cfg.Name, err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = a.bgp.StopBgp(c, &api.StopBgpRequest{})
	}()
	if err := a.renewDropped(ctx); err != nil {
		return err
	}
	for _, p := range a.cfg.Peers {
		if err := a.bgp.AddPeer(ctx, &api.AddPeerRequest{Peer: a.peer(p)}); err != nil {
			return fmt.Errorf("announcer %s: add peer %s: %w", a.cfg.Name, p.Address, err)
		}
	}
	if err := a.Announce(ctx, a.cfg.Prefixes); err != nil {
		return err
	}
	bfdCtx, stopBFD := context.WithCancel(context.Background())
	defer stopBFD()
	if a.cfg.BFD != nil {
		a.bfd = bfdrun.New(a.log, nil)
		defer a.bfd.Close()
		ch, cancel := a.bfd.Changes()
		defer cancel()
		go func() {
			for {
				select {
				case <-bfdCtx.Done():
					return
				case c, ok := <-ch:
					if !ok {
						return
					}
					a.log.Info("bfd state", "peer", c.Peer, "old", c.Old, "new", c.New, "diag", c.Diag,
						"remoteState", c.RemoteState, "remoteDiag", c.RemoteDiag, "pathFailure", c.PathFailure)
					if c.PathFailure {
						_ = a.bgp.ResetPeer(bfdCtx, &api.ResetPeerRequest{Address: c.Peer.String(), Communication: "BFD down"})
					}
				}
			}
		}()
		for _, p := range a.cfg.Peers {
			if err := a.bfd.Add(a.cfg.Address, p.Address, *a.cfg.BFD); err != nil {
				return fmt.Errorf("announcer %s: bfd %s: %w", a.cfg.Name, p.Address, err)
			}
		}
	}

	_ = os.Remove(a.cfg.ControlSocket)
	ln, err := net.Listen("unix", a.cfg.ControlSocket)
	if err != nil {
		return fmt.Errorf("announcer %s: control socket: %w", a.cfg.Name, err)
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("control api", "err", err)
		}
	}()
	close(a.started)
	a.log.Info("announcer running", "address", a.cfg.Address, "peers", len(a.cfg.Peers), "prefixes", len(a.cfg.Prefixes))
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-bgpLog.Fatals(): // GoBGP runs on in a state it did not expect
		runErr = fmt.Errorf("announcer %s: %w", a.cfg.Name, err)
		a.log.Error("announcer stopping", "err", runErr)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(c)
	_ = os.Remove(a.cfg.ControlSocket)
	return runErr
}

// peer is the GoBGP neighbor for a router the announcer dials.
func (a *Announcer) peer(p Peer) *api.Peer {
	hold := max(uint64(a.cfg.HoldTime.Std()/time.Second), 3)
	return &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: 1, IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{LocalAddress: a.cfg.Address.String()},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
}

// renewDropped watches the neighbors' states and replaces one whose session
// or connection dropped (package idlehold), so the announcer dials again
// within its connect retry, as the speaker does, whichever end ended the
// session: IdleHoldTimeAfterReset covers only the announcer's own resets, and
// under BFD the router's reset can arrive first.
func (a *Announcer) renewDropped(ctx context.Context) error {
	var mu sync.Mutex
	last := map[string]api.PeerState_SessionState{}
	err := a.bgp.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(ev *api.WatchEventResponse) {
		pe := ev.GetPeer()
		if pe == nil || pe.Type != api.WatchEventResponse_PeerEvent_STATE {
			return
		}
		addr := pe.GetPeer().GetState().GetNeighborAddress()
		mu.Lock()
		old := last[addr]
		last[addr] = pe.GetPeer().GetState().GetSessionState()
		mu.Unlock()
		if !idlehold.Entered(old, pe.GetPeer()) {
			return
		}
		i := slices.IndexFunc(a.cfg.Peers, func(p Peer) bool { return p.Address.String() == addr })
		if i < 0 {
			return
		}
		want := a.peer(a.cfg.Peers[i])
		go func() {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			renewed, err := idlehold.Renew(c, a.bgp, want)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Error("renew neighbor", "peer", addr, "err", err)
				}
				return
			}
			switch {
			case renewed && old == api.PeerState_ESTABLISHED:
				a.log.Info("bgp neighbor renewed after its session dropped", "peer", addr)
			case renewed: // a refused dial, every 1-2 s while the router is drained
				a.log.Debug("bgp neighbor renewed after its connection dropped", "peer", addr, "state", old.String())
			}
		}()
	})
	if err != nil {
		return fmt.Errorf("announcer %s: watch peers: %w", a.cfg.Name, err)
	}
	return nil
}

func (a *Announcer) path(p netip.Prefix) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: p.Addr().String(), PrefixLen: uint32(p.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	if p.Addr().Is4() {
		nh, err := anypb.New(&api.NextHopAttribute{NextHop: a.cfg.Address.String()})
		if err != nil {
			return nil, err
		}
		return &api.Path{
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
			Nlri:   nlri, Pattrs: []*anypb.Any{origin, nh},
		}, nil
	}
	if !a.cfg.Address6.IsValid() {
		return nil, fmt.Errorf("announce %v: the node has no IPv6 address for the next-hop", p)
	}
	family := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	mp, err := anypb.New(&api.MpReachNLRIAttribute{Family: family, NextHops: []string{a.cfg.Address6.String()}, Nlris: []*anypb.Any{nlri}})
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: []*anypb.Any{origin, mp}}, nil
}

// Announce adds prefixes (idempotent).
func (a *Announcer) Announce(ctx context.Context, prefixes []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range prefixes {
		p = p.Masked()
		if a.announced[p] {
			continue
		}
		path, err := a.path(p)
		if err != nil {
			return err
		}
		if _, err := a.bgp.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path}); err != nil {
			return fmt.Errorf("announce %v: %w", p, err)
		}
		a.announced[p] = true
	}
	return nil
}

// Withdraw removes prefixes (absent ones are ignored).
func (a *Announcer) Withdraw(ctx context.Context, prefixes []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range prefixes {
		p = p.Masked()
		if !a.announced[p] {
			continue
		}
		path, err := a.path(p)
		if err != nil {
			return err
		}
		if err := a.bgp.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL,
			Family: path.Family, Path: path}); err != nil {
			return fmt.Errorf("withdraw %v: %w", p, err)
		}
		delete(a.announced, p)
	}
	return nil
}

// Announced lists the announced prefixes, sorted.
func (a *Announcer) Announced() []netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]netip.Prefix, 0, len(a.announced))
	for p := range a.announced {
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

func (a *Announcer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /prefixes", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.Announced())
	})
	mux.HandleFunc("GET /neighbors", func(w http.ResponseWriter, req *http.Request) {
		var out []control.Neighbor
		err := a.bgp.ListPeer(req.Context(), &api.ListPeerRequest{}, func(p *api.Peer) {
			addr, _ := netip.ParseAddr(p.GetConf().GetNeighborAddress())
			out = append(out, control.Neighbor{Address: addr, ASN: p.GetConf().GetPeerAsn(),
				State: strings.ToLower(p.GetState().GetSessionState().String())})
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	change := func(f func(context.Context, []netip.Prefix) error) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			var r Request
			if err := json.NewDecoder(req.Body).Decode(&r); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := f(req.Context(), r.Prefixes); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	bfdAdmin := func(enable bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			addr, err := netip.ParseAddr(req.PathValue("addr"))
			if err != nil {
				http.Error(w, "peer: "+err.Error(), http.StatusBadRequest)
				return
			}
			if a.bfd == nil {
				http.Error(w, "announcer runs no BFD", http.StatusConflict)
				return
			}
			if err := a.bfd.SetAdminDown(a.cfg.Address, addr, !enable); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			a.log.Info("bfd admin state", "peer", addr, "enabled", enable)
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /bfd/{addr}/disable", bfdAdmin(false))
	mux.HandleFunc("POST /bfd/{addr}/enable", bfdAdmin(true))
	mux.HandleFunc("POST /announce", change(a.Announce))
	mux.HandleFunc("POST /withdraw", change(a.Withdraw))
	return mux
}
