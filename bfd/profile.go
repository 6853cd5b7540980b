package bfd

import (
	"errors"
	"fmt"
	"time"
)

// Profile mirrors MetalLB's BFDProfile in its units: intervals in milliseconds.
type Profile struct {
	ReceiveInterval  uint32 // ms, 10-60000, default 300: our Required Min RX Interval
	TransmitInterval uint32 // ms, 10-60000, default 300: our Desired Min TX Interval
	DetectMultiplier uint32 // 2-255, default 3
	EchoInterval     uint32 // ms, 10-60000, default 50: echo transmit interval and our Required Min Echo RX
	EchoMode         bool   // run the RFC 5881 echo function (single-hop IPv4 sessions; see the package doc)
	PassiveMode      bool   // do not transmit until a packet from the peer arrives
	MinimumTTL       uint32 // 1-254, default 254: the lowest TTL a multi-hop session accepts (single-hop accepts only 255)
}

// Profile defaults, as in MetalLB's BFDProfile.
const (
	DefaultReceiveInterval  = 300
	DefaultTransmitInterval = 300
	DefaultDetectMultiplier = 3
	DefaultEchoInterval     = 50
	DefaultMinimumTTL       = 254
)

// DefaultProfile returns MetalLB's BFDProfile defaults.
func DefaultProfile() Profile {
	return Profile{
		ReceiveInterval:  DefaultReceiveInterval,
		TransmitInterval: DefaultTransmitInterval,
		DetectMultiplier: DefaultDetectMultiplier,
		EchoInterval:     DefaultEchoInterval,
		MinimumTTL:       DefaultMinimumTTL,
	}
}

// WithDefaults returns p with every zero numeric field replaced by its
// default, for callers that map optional (pointer) CRD fields.
func (p Profile) WithDefaults() Profile {
	d := DefaultProfile()
	if p.ReceiveInterval == 0 {
		p.ReceiveInterval = d.ReceiveInterval
	}
	if p.TransmitInterval == 0 {
		p.TransmitInterval = d.TransmitInterval
	}
	if p.DetectMultiplier == 0 {
		p.DetectMultiplier = d.DetectMultiplier
	}
	if p.EchoInterval == 0 {
		p.EchoInterval = d.EchoInterval
	}
	if p.MinimumTTL == 0 {
		p.MinimumTTL = d.MinimumTTL
	}
	return p
}

// Validate checks every field against MetalLB's ranges; the error names each
// offending field, e.g. `receiveInterval: 5 is outside 10-60000`.
func (p Profile) Validate() error {
	var errs []error
	check := func(field string, v, lo, hi uint32) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("%s: %d is outside %d-%d", field, v, lo, hi))
		}
	}
	check("receiveInterval", p.ReceiveInterval, 10, 60000)
	check("transmitInterval", p.TransmitInterval, 10, 60000)
	check("detectMultiplier", p.DetectMultiplier, 2, 255)
	check("echoInterval", p.EchoInterval, 10, 60000)
	check("minimumTtl", p.MinimumTTL, 1, 254)
	return errors.Join(errs...)
}

// echoInterval is the echo interval in microseconds, 0 when echo is off.
func (p Profile) echoInterval(k PeerKey) uint32 {
	if !p.EchoMode || !k.Local.Is4() || k.MultiHop {
		return 0
	}
	return p.EchoInterval * uint32(time.Millisecond/time.Microsecond)
}

// params converts the profile to the wire units of RFC 5880 (microseconds).
func (p Profile) params() sessionParams {
	return sessionParams{
		DesiredMinTx:  p.TransmitInterval * uint32(time.Millisecond/time.Microsecond),
		RequiredMinRx: p.ReceiveInterval * uint32(time.Millisecond/time.Microsecond),
		DetectMult:    uint8(p.DetectMultiplier),
	}
}
