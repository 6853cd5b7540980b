package validation

import (
	"errors"
	"net/netip"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/conversion"
)

func admitPeer(p *v1beta2.BGPPeer, s Snapshot) error {
	var errs []error
	if err := BGPPeer(p); err != nil {
		errs = append(errs, err)
	}
	if err := duplicatePeer(p, s.Peers); err != nil {
		errs = append(errs, err)
	}
	// A missing Secret is allowed (it may be applied next; the speaker waits
	// for it, as MetalLB does); one of the wrong type or without a password
	// is not.
	ref := p.Spec.PasswordSecret
	if ref.Namespace != "" && s.Namespace != "" && ref.Namespace != s.Namespace {
		// The speaker reads Secrets of its own namespace only (as MetalLB).
		errs = append(errs, fieldErr("spec.passwordSecret.namespace", "%q: the Secret must be in namespace %q, with the BGPPeer", ref.Namespace, s.Namespace))
	} else if ref.Name != "" {
		if sec := s.Secrets[ref.Name]; sec != nil {
			if sec.Type != PasswordSecretType {
				errs = append(errs, fieldErr("spec.passwordSecret", "Secret %q has type %q; a BGP password Secret must have type %s", ref.Name, sec.Type, PasswordSecretType))
			} else if _, ok := sec.Data["password"]; !ok {
				errs = append(errs, fieldErr("spec.passwordSecret", "Secret %q has no key \"password\"", ref.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// duplicatePeer rejects a second BGPPeer for the same session: same peer
// address, port, VRF and node selectors. Both would open one TCP connection
// to the router from each node, and the router keeps only one.
func duplicatePeer(p *v1beta2.BGPPeer, others []v1beta2.BGPPeer) error {
	key := peerKey(&p.Spec)
	for i := range others {
		o := &others[i]
		if o.Name != p.Name && peerKey(&o.Spec) == key {
			return fieldErr("spec.peerAddress", "BGPPeer %q already peers with %s port %d from the same nodes (same vrf and nodeSelectors)",
				o.Name, p.Spec.Address, peerPort(p.Spec.Port))
		}
	}
	return nil
}

type sessionKey struct {
	addr  string
	port  uint16
	vrf   string
	nodes string
}

func peerKey(s *v1beta2.BGPPeerSpec) sessionKey {
	addr := s.Address
	if a, err := netip.ParseAddr(s.Address); err == nil {
		addr = a.Unmap().String()
	}
	return sessionKey{addr: addr, port: peerPort(s.Port), vrf: s.VRFName, nodes: selectorKey(s.NodeSelectors)}
}

func peerPort(p uint16) uint16 {
	if p == 0 {
		return v1beta1.DefaultBGPPort
	}
	return p
}

// peerToV1beta2 converts a v1beta1 BGPPeer to v1beta2 (the conversion
// webhook's own function), so Admit judges both versions by the same rules.
func peerToV1beta2(in *v1beta1.BGPPeer) *v1beta2.BGPPeer {
	return conversion.BGPPeerToV1beta2(in)
}
