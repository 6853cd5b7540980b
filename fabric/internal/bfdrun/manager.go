package bfdrun

import (
	"log/slog"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

type manager struct{ m *bfd.Manager }

// New returns a Service backed by a bfd.Manager in the calling process's network
// namespace; metrics go to reg (nil: a private registry).
func New(log *slog.Logger, reg prometheus.Registerer) Service {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return manager{m: bfd.NewManager(bfd.WithLogger(log), bfd.WithRegisterer(reg))}
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
	return out
}

// Add implements Service.
func (s manager) Add(local, peer netip.Addr, p topology.BFDProfile) error {
	return s.m.AddPeer(bfd.PeerKey{Local: local, Peer: peer}, Profile(p))
}

// Remove implements Service.
func (s manager) Remove(local, peer netip.Addr) error {
	return s.m.RemovePeer(bfd.PeerKey{Local: local, Peer: peer})
}

// Changes implements Service.
func (s manager) Changes() (<-chan Change, func()) {
	in, cancel := s.m.Subscribe()
	out := make(chan Change, 64)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for c := range in {
			ch := Change{
				Peer: c.Key.Peer,
				Old:  c.Old.String(),
				New:  c.New.String(),
				Diag: c.Diag.String(),
				At:   c.At,
				Down: c.Old == bfd.StateUp && c.New != bfd.StateUp,
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

// Sessions implements Service.
func (s manager) Sessions() []control.BFDSession {
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
		})
	}
	return out
}

// Close implements Service.
func (s manager) Close() error { return s.m.Close() }
