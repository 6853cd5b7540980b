package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// session is one BGP session: its own GoBGP server with exactly one neighbor and no
// listener (the speaker always dials). One server per session keeps each peer's RIB
// separate, so per-peer attributes and `peers` restrictions need no policies, and no
// session shares best-path state with another.
type session struct {
	spec   announce.Session
	srv    *server.BgpServer
	log    *slog.Logger
	cancel context.CancelFunc
	up     atomic.Bool
	onUp   func(name string, up bool)
}

const rejectPeersPolicy = "ecmplb-reject-learned"

func startSession(spec announce.Session, log *slog.Logger, onUp func(string, bool)) (*session, error) {
	s := &session{spec: spec, log: log.With("peer", spec.Name), onUp: onUp}
	s.srv = server.NewBgpServer(server.LoggerOption(&slogAdapter{l: s.log}))
	go s.srv.Serve()
	ctx := context.Background()
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        spec.MyASN,
		RouterId:   spec.RouterID.String(),
		ListenPort: -1, // never listen: no connection collisions, no port 179 needed
	}}); err != nil {
		return nil, fmt.Errorf("peer %s: start bgp: %w", spec.Name, err)
	}
	if err := s.rejectLearned(ctx); err != nil {
		s.srv.Stop()
		return nil, fmt.Errorf("peer %s: import policy: %w", spec.Name, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if err := s.srv.WatchEvent(wctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, s.peerEvent); err != nil {
		cancel()
		s.srv.Stop()
		return nil, fmt.Errorf("peer %s: watch: %w", spec.Name, err)
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(spec)}); err != nil {
		cancel()
		s.srv.Stop()
		return nil, fmt.Errorf("peer %s: add neighbor: %w", spec.Name, err)
	}
	return s, nil
}

// rejectLearned installs a global import policy that drops every path learned from a
// neighbor. Locally added paths carry no neighbor address, so the neighbor-set
// condition never matches them and they pass (GoBGP applies global import policies to
// local paths too).
func (s *session) rejectLearned(ctx context.Context) error {
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: "ecmplb-any-neighbor", List: []string{"0.0.0.0/0", "::/0"},
	}}); err != nil {
		return err
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{
		Name: rejectPeersPolicy,
		Statements: []*api.Statement{{
			Name: "reject-learned",
			Conditions: &api.Conditions{NeighborSet: &api.MatchSet{
				Type: api.MatchSet_ANY, Name: "ecmplb-any-neighbor",
			}},
			Actions: &api.Actions{RouteAction: api.RouteAction_REJECT},
		}},
	}}); err != nil {
		return err
	}
	return s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT,
		Policies:      []*api.Policy{{Name: rejectPeersPolicy}},
		DefaultAction: api.RouteAction_ACCEPT,
	}})
}

func peerConfig(spec announce.Session) *api.Peer {
	secs := func(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: spec.PeerAddress.String(),
			PeerAsn:         spec.PeerASN,
			LocalAsn:        spec.MyASN,
			AuthPassword:    spec.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:           secs(spec.ConnectTime),
			HoldTime:               secs(spec.HoldTime),
			KeepaliveInterval:      max(secs(spec.KeepaliveTime), 1),
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(spec.PeerPort)},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
	if spec.SourceAddress.IsValid() {
		p.Transport.LocalAddress = spec.SourceAddress.String()
	}
	if spec.EBGPMultiHop && !spec.IBGP() {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if spec.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: 120}
		for _, af := range p.AfiSafis {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
	}
	return p
}

func (s *session) peerEvent(r *api.WatchEventResponse) {
	pe := r.GetPeer()
	if pe == nil || pe.Peer == nil || pe.Peer.State == nil {
		return
	}
	up := pe.Peer.State.SessionState == api.PeerState_ESTABLISHED
	if s.up.Swap(up) != up {
		s.log.Info("bgp session state", "up", up, "state", pe.Peer.State.SessionState.String())
		if s.onUp != nil {
			s.onUp(s.spec.Name, up)
		}
	}
}

// path builds the GoBGP path for prefix; a nil attrs builds a withdrawal.
func path(prefix netip.Prefix, a *Attrs, nextHopV6 netip.Addr) (*api.Path, error) {
	var nlri bgp.AddrPrefixInterface
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if prefix.Addr().Is4() {
		nlri = bgp.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
		// 0.0.0.0: GoBGP puts the session's local address as next-hop.
		attrs = append(attrs, bgp.NewPathAttributeNextHop("0.0.0.0"))
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
	p, err := path(prefix, &a, s.spec.NextHopV6)
	if err != nil {
		return err
	}
	_, err = s.srv.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
	return err
}

// withdraw deletes exactly the path for prefix. Never call DeletePath without a path:
// GoBGP would delete every local path.
func (s *session) withdraw(prefix netip.Prefix) error {
	p, err := path(prefix, nil, s.spec.NextHopV6)
	if err != nil {
		return err
	}
	return s.srv.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
}

func (s *session) setEnabled(on bool) error {
	ctx := context.Background()
	addr := s.spec.PeerAddress.String()
	if on {
		return s.srv.EnablePeer(ctx, &api.EnablePeerRequest{Address: addr})
	}
	return s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr, Communication: "BFD down"})
}

// counters reads the neighbor's message counters.
func (s *session) counters() (updatesSent, updatesReceived uint64) {
	_ = s.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: s.spec.PeerAddress.String()}, func(p *api.Peer) {
		if p.State != nil && p.State.Messages != nil && p.State.Messages.Sent != nil {
			updatesSent = p.State.Messages.Sent.Update
			updatesReceived = p.State.Messages.Received.GetUpdate()
		}
	})
	return
}

func (s *session) stop() {
	s.cancel() // watchers first, or their goroutines can hang in StopBgp
	s.srv.Stop()
	if s.up.Swap(false) && s.onUp != nil {
		s.onUp(s.spec.Name, false)
	}
}
