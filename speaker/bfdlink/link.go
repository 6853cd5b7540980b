// Package bfdlink ties BFD sessions to BGP sessions: a BGPPeer with a bfdProfile
// gets a BFD session to the same address, and when BFD goes Down the BGP session is
// shut at once (routes leave the peer without waiting for the hold timer); it is
// enabled again when BFD comes back Up.
package bfdlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

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
type SessionControl interface {
	SetSessionEnabled(peer string, on bool) error
}

// Link keeps BFD sessions in step with the BGP sessions.
type Link struct {
	mgr   BFDManager
	bgp   SessionControl
	log   *slog.Logger
	local func(peer netip.Addr) (netip.Addr, error)
	up    *prometheus.GaugeVec

	mu       sync.Mutex
	byKey    map[bfd.PeerKey]string // BFD session → BGPPeer name
	byName   map[string]entry
	disabled map[string]bool // BGP sessions we shut because BFD is down
}

type entry struct {
	key     bfd.PeerKey
	profile bfd.Profile
}

// New returns a Link; call Run to react to BFD state changes.
func New(mgr BFDManager, bgp SessionControl, log *slog.Logger, reg prometheus.Registerer) *Link {
	l := &Link{mgr: mgr, bgp: bgp, log: log, local: kernelSource,
		byKey: map[bfd.PeerKey]string{}, byName: map[string]entry{}, disabled: map[string]bool{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "bfd_session_up", Help: "1 when the BFD session to the BGP peer is Up."}, []string{"peer"})}
	if reg != nil {
		reg.MustRegister(l.up)
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

// SetSessions adds, updates and removes BFD sessions for the BGP sessions that have
// a BFD profile.
func (l *Link) SetSessions(sessions []announce.Session) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	want := map[string]entry{}
	for _, s := range sessions {
		if s.BFD == nil {
			continue
		}
		local := s.SourceAddress
		if !local.IsValid() {
			a, err := l.local(s.PeerAddress)
			if err != nil {
				errs = append(errs, fmt.Errorf("peer %s: local address for BFD: %w", s.Name, err))
				continue
			}
			local = a
		}
		p := Profile(s.BFD)
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: BFDProfile %q: %w", s.Name, s.BFD.Name, err))
			continue
		}
		want[s.Name] = entry{key: bfd.PeerKey{Local: local, Peer: s.PeerAddress}, profile: p}
	}
	for name, cur := range l.byName {
		if w, ok := want[name]; ok && w.key == cur.key {
			continue
		}
		if err := l.mgr.RemovePeer(cur.key); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: remove BFD session: %w", name, err))
		}
		delete(l.byKey, cur.key)
		delete(l.byName, name)
		l.up.DeleteLabelValues(name)
		if l.disabled[name] {
			delete(l.disabled, name)
			if err := l.bgp.SetSessionEnabled(name, true); err != nil {
				l.log.Debug("re-enabling BGP session after BFD removal", "peer", name, "err", err)
			}
		}
	}
	for name, w := range want {
		cur, ok := l.byName[name]
		switch {
		case !ok:
			if err := l.mgr.AddPeer(w.key, w.profile); err != nil {
				errs = append(errs, fmt.Errorf("peer %s: add BFD session: %w", name, err))
				continue
			}
			l.up.WithLabelValues(name).Set(0)
			l.log.Info("bfd session added", "peer", name, "local", w.key.Local, "remote", w.key.Peer)
		case cur.profile != w.profile:
			if err := l.mgr.UpdatePeer(w.key, w.profile); err != nil {
				errs = append(errs, fmt.Errorf("peer %s: update BFD session: %w", name, err))
				continue
			}
		}
		l.byName[name] = w
		l.byKey[w.key] = name
	}
	if len(errs) > 0 {
		return fmt.Errorf("bfd: %w", errors.Join(errs...))
	}
	return nil
}

// Run handles BFD state changes until ctx ends.
func (l *Link) Run(ctx context.Context) {
	ch, cancel := l.mgr.Subscribe()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			l.handle(ev)
		}
	}
}

func (l *Link) handle(ev bfd.StateChange) {
	l.mu.Lock()
	name, ok := l.byKey[ev.Key]
	if !ok {
		l.mu.Unlock()
		return
	}
	var enable, disable bool
	switch {
	case ev.New == bfd.StateUp:
		l.up.WithLabelValues(name).Set(1)
		enable = l.disabled[name]
		delete(l.disabled, name)
	case ev.Old == bfd.StateUp:
		l.up.WithLabelValues(name).Set(0)
		disable = !l.disabled[name]
		l.disabled[name] = true
	}
	l.mu.Unlock()
	switch {
	case disable:
		l.log.Warn("bfd down: shutting BGP session", "peer", name, "diag", ev.Diag.String())
		if err := l.bgp.SetSessionEnabled(name, false); err != nil {
			l.log.Error("shutting BGP session", "peer", name, "err", err)
		}
	case enable:
		l.log.Info("bfd up: enabling BGP session", "peer", name)
		if err := l.bgp.SetSessionEnabled(name, true); err != nil {
			l.log.Error("enabling BGP session", "peer", name, "err", err)
		}
	}
}
