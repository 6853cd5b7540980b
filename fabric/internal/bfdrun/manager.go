package bfdrun

import (
	"errors"
	"log/slog"
	"net/netip"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

type manager struct {
	m *bfd.Manager

	mu        sync.Mutex
	profiles  map[bfd.PeerKey]topology.BFDProfile
	adminDown map[bfd.PeerKey]bool
}

// New returns a Service backed by a bfd.Manager in the calling process's network
// namespace; metrics go to reg (nil: a private registry).
func New(log *slog.Logger, reg prometheus.Registerer) Service {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &manager{
		m:         bfd.NewManager(bfd.WithLogger(log), bfd.WithRegisterer(reg)),
		profiles:  map[bfd.PeerKey]topology.BFDProfile{},
		adminDown: map[bfd.PeerKey]bool{},
	}
}

// Profile converts a topology profile to the bfd package's profile.
func Profile(p topology.BFDProfile) bfd.Profile {
	out := bfd.DefaultProfile()
	if p.ReceiveInterval != 0 {
		out.ReceiveInterval = p.ReceiveInterval
	}
	if p.TransmitInterval != 0 {
		out.TransmitInterval = p.TransmitInterval
	}
	if p.DetectMultiplier != 0 {
		out.DetectMultiplier = p.DetectMultiplier
	}
	out.PassiveMode = p.PassiveMode
	if p.MinimumTTL != 0 {
		out.MinimumTTL = p.MinimumTTL
	}
	return out
}

// key is a session's key: single-hop, or multi-hop (RFC 5883, UDP 4784) as the
// profile says.
func key(local, peer netip.Addr, p topology.BFDProfile) bfd.PeerKey {
	return bfd.PeerKey{Local: local.Unmap(), Peer: peer.Unmap(), MultiHop: p.Multihop}
}

// keyOf is the key of the session from local to peer that Add started (a
// single-hop one when there is none, for the bfd package's error).
func (s *manager) keyOf(local, peer netip.Addr) bfd.PeerKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.profiles {
		if k.Local == local.Unmap() && k.Peer == peer.Unmap() {
			return k
		}
	}
	return key(local, peer, topology.BFDProfile{})
}

// Add implements Service.
func (s *manager) Add(local, peer netip.Addr, p topology.BFDProfile) error {
	k := key(local, peer, p)
	if err := s.m.AddPeer(k, Profile(p)); err != nil {
		return err
	}
	s.mu.Lock()
	s.profiles[k] = p
	delete(s.adminDown, k)
	s.mu.Unlock()
	return nil
}

// Remove implements Service.
func (s *manager) Remove(local, peer netip.Addr) error {
	k := s.keyOf(local, peer)
	s.mu.Lock()
	wasDown := s.adminDown[k]
	delete(s.profiles, k)
	delete(s.adminDown, k)
	s.mu.Unlock()
	if wasDown {
		return nil
	}
	return s.m.RemovePeer(k)
}

// SetAdminDown implements Service. The bfd package has no administrative
// state of its own: shutting down removes the session (which sends the peer
// AdminDown) and enabling adds it again, with a new discriminator, as a
// router does when an operator toggles BFD on an interface.
func (s *manager) SetAdminDown(local, peer netip.Addr, down bool) error {
	k := s.keyOf(local, peer)
	s.mu.Lock()
	p, known := s.profiles[k]
	was := s.adminDown[k]
	s.mu.Unlock()
	if !known {
		return errors.New("bfd peer " + k.String() + ": no such session")
	}
	if was == down {
		return nil
	}
	if down {
		if err := s.m.RemovePeer(k); err != nil {
			return err
		}
	} else if err := s.m.AddPeer(k, Profile(p)); err != nil {
		return err
	}
	s.mu.Lock()
	if down {
		s.adminDown[k] = true
	} else {
		delete(s.adminDown, k)
	}
	s.mu.Unlock()
	return nil
}

// Mute implements Service.
func (s *manager) Mute(local, peer netip.Addr, muted bool) error {
	return s.m.Mute(s.keyOf(local, peer), muted)
}

// Changes implements Service.
func (s *manager) Changes() (<-chan Change, func()) {
	in, cancel := s.m.Subscribe()
	out := make(chan Change, 64)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for c := range in {
			// The rule is this package's own (PathFailure), not the bfd
			// package's, so the fabric cannot share a bug with the speaker.
			remoteState, remoteDiag := c.RemoteState, c.RemoteDiag
			ch := Change{
				Peer:        c.Key.Peer,
				Old:         c.Old.String(),
				New:         c.New.String(),
				Diag:        c.Diag.String(),
				RemoteState: remoteState.String(),
				RemoteDiag:  remoteDiag.String(),
				At:          c.At,
				PathFailure: PathFailure(c.Old, c.New, c.Diag, remoteState, remoteDiag),
			}
			select {
			case out <- ch:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done); cancel() }) }
}

// Sessions implements Service. Sessions shut down administratively are listed
// in state AdminDown.
func (s *manager) Sessions() []control.BFDSession {
	out := []control.BFDSession{}
	for _, i := range s.m.Sessions() {
		out = append(out, control.BFDSession{
			Local:         i.Key.Local,
			Peer:          i.Key.Peer,
			State:         i.State.String(),
			RemoteState:   i.RemoteState.String(),
			LocalDiag:     i.LocalDiag.String(),
			RemoteDiag:    i.RemoteDiag.String(),
			TxInterval:    i.TxInterval,
			DetectionTime: i.DetectionTime,
			LastChange:    i.LastChange,
			PacketsIn:     i.PacketsIn,
			PacketsOut:    i.PacketsOut,
			Multihop:      i.Key.MultiHop,
		})
	}
	s.mu.Lock()
	for k := range s.adminDown {
		out = append(out, control.BFDSession{Local: k.Local, Peer: k.Peer, State: bfd.StateAdminDown.String(),
			LocalDiag: bfd.DiagAdminDown.String(), Multihop: k.MultiHop})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Local.Compare(out[j].Local); c != 0 {
			return c < 0
		}
		return out[i].Peer.Compare(out[j].Peer) < 0
	})
	return out
}

// Close implements Service.
func (s *manager) Close() error { return s.m.Close() }
