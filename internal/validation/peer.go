package validation

import (
	"errors"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// BGP timer bounds and defaults (MetalLB's: hold time 90 s, keepalive a third
// of it, connect time 5 s).
const (
	DefaultHoldTime    = 90 * time.Second
	DefaultConnectTime = 5 * time.Second
	// MinHoldTime is the smallest non-zero hold time BGP allows (RFC 4271 4.2).
	MinHoldTime = 3 * time.Second
	// MaxTimer is the largest value the 16-bit seconds fields of BGP carry.
	MaxTimer = 65535 * time.Second
)

// Timers checks a BGPPeer's holdTime and keepaliveTime (nil: not set) and
// returns the values in force.
//
// A hold time of 0 (no keepalives, the session never times out) is valid BGP
// and MetalLB passes it to FRR, but GoBGP v3, which this speaker embeds,
// replaces 0 with its 90 s default; rather than silently run another value it
// is rejected. The keepalive time must be below the hold time, as MetalLB
// requires.
func Timers(hold, keepalive *time.Duration) (holdTime, keepaliveTime time.Duration, err error) {
	holdTime = DefaultHoldTime
	if hold != nil {
		holdTime = *hold
		switch {
		case holdTime == 0:
			return 0, 0, fieldErr("spec.holdTime", "0s (no keepalives) is not supported by this speaker (GoBGP would run 90s instead); set at least %s", MinHoldTime)
		case holdTime < MinHoldTime:
			return 0, 0, fieldErr("spec.holdTime", "%s is below the BGP minimum of %s", holdTime, MinHoldTime)
		case holdTime > MaxTimer:
			return 0, 0, fieldErr("spec.holdTime", "%s is above the BGP maximum of %s", holdTime, MaxTimer)
		}
	}
	keepaliveTime = holdTime / 3
	if keepalive != nil {
		keepaliveTime = *keepalive
		switch {
		case keepaliveTime <= 0:
			return 0, 0, fieldErr("spec.keepaliveTime", "%s must be positive", keepaliveTime)
		case keepaliveTime >= holdTime:
			return 0, 0, fieldErr("spec.keepaliveTime", "%s must be lower than holdTime %s", keepaliveTime, holdTime)
		}
	}
	return holdTime, keepaliveTime, nil
}

// ConnectTime checks a BGPPeer's connectTime (nil: not set) and returns the
// value in force.
func ConnectTime(d *time.Duration) (time.Duration, error) {
	if d == nil {
		return DefaultConnectTime, nil
	}
	if *d < time.Second || *d > MaxTimer {
		return 0, fieldErr("spec.connectTime", "%s is outside 1s-65535s", *d)
	}
	return *d, nil
}

// BGPPeer checks everything about a BGPPeer that does not depend on other
// objects or on the node: ASNs, addresses, timers, and the fields this
// speaker does not implement (vrf, disableMP, dynamicASN, interface),
// which are rejected rather than ignored (the CRD
// refuses the last three at admission too; this catches objects stored
// before). Node-dependent checks (router ID) and references (bfdProfile,
// passwordSecret) are the speaker's.
func BGPPeer(p *v1beta2.BGPPeer) error {
	s := &p.Spec
	var errs []error
	add := func(e error) { errs = append(errs, e) }
	if s.MyASN == 0 {
		add(fieldErr("spec.myASN", "must be set"))
	}
	switch {
	case s.DynamicASN != "" && s.ASN != 0:
		add(fieldErr("spec.dynamicASN", "must not be set together with spec.peerASN"))
	case s.DynamicASN != "":
		add(fieldErr("spec.dynamicASN", "%q: learning the router's AS number is not supported by ecmplb yet; set spec.peerASN", s.DynamicASN))
	case s.ASN == 0:
		add(fieldErr("spec.peerASN", "must be set"))
	}
	peer, err := netip.ParseAddr(s.Address)
	if err != nil {
		add(fieldErr("spec.peerAddress", "%q is not an IP address", s.Address))
	}
	if s.SrcAddress != "" {
		if src, err := netip.ParseAddr(s.SrcAddress); err != nil {
			add(fieldErr("spec.sourceAddress", "%q is not an IP address", s.SrcAddress))
		} else if peer.IsValid() && src.Unmap().Is4() != peer.Unmap().Is4() {
			// The session's TCP connection runs from it to peerAddress.
			add(fieldErr("spec.sourceAddress", "%s is not of the family of spec.peerAddress %s", s.SrcAddress, s.Address))
		}
	}
	if s.RouterID != "" {
		if a, err := netip.ParseAddr(s.RouterID); err != nil || !a.Is4() {
			add(fieldErr("spec.routerID", "%q is not an IPv4 address", s.RouterID))
		}
	}
	if _, _, err := Timers(duration(s.HoldTime), duration(s.KeepaliveTime)); err != nil {
		add(err)
	}
	if _, err := ConnectTime(duration(s.ConnectTime)); err != nil {
		add(err)
	}
	if s.EBGPMultiHop && s.ASN == s.MyASN {
		// MetalLB's rule: multi-hop is an eBGP setting; an iBGP peer (same
		// AS) is multi-hop already.
		add(fieldErr("spec.ebgpMultiHop", "must not be set for an iBGP peer (peerASN %d equals myASN)", s.ASN))
	}
	if s.Password != "" && s.PasswordSecret.Name != "" {
		add(fieldErr("spec.passwordSecret", "must not be set together with spec.password"))
	}
	if err := UnsupportedPeerFields(s.VRFName, s.DisableMP); err != nil {
		add(err)
	}
	if s.Interface != "" {
		add(fieldErr("spec.interface", "%q: unnumbered BGP is not supported by ecmplb yet; set spec.peerAddress", s.Interface))
	}
	if err := Selectors("spec.nodeSelectors", s.NodeSelectors); err != nil {
		add(err)
	}
	return errors.Join(errs...)
}

// UnsupportedPeerFields rejects the BGPPeer fields this speaker does not
// implement, so they are never silently ignored: spec.vrf (peering from a
// host VRF) and spec.disableMP (separate sessions per address family).
func UnsupportedPeerFields(vrf string, disableMP bool) error {
	var errs []error
	if vrf != "" {
		errs = append(errs, fieldErr("spec.vrf", "%q: VRFs are not supported by this speaker (it peers from the default VRF only)", vrf))
	}
	if disableMP {
		errs = append(errs, fieldErr("spec.disableMP", "true is not supported by this speaker (IPv4 and IPv6 routes share one session per peer address)"))
	}
	return errors.Join(errs...)
}

func duration(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}

// PasswordSecretType is the Secret type BGPPeer password Secrets have
// (MetalLB's convention); the speaker watches only Secrets of this type.
const PasswordSecretType = "kubernetes.io/basic-auth"

// PasswordFromSecret reads a BGPPeer's password from its Secret sec (nil:
// not found), naming the field and the Secret on failure.
func PasswordFromSecret(sec *corev1.Secret, namespace, name string) (string, error) {
	if sec == nil || sec.Type != PasswordSecretType {
		return "", fieldErr("spec.passwordSecret", "Secret %s/%s of type %s not found", namespace, name, PasswordSecretType)
	}
	pw, ok := sec.Data["password"]
	if !ok {
		return "", fieldErr("spec.passwordSecret", "Secret %s/%s has no key \"password\"", namespace, name)
	}
	return string(pw), nil
}
