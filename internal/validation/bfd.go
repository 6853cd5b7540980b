package validation

import (
	"errors"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// BFD value ranges, MetalLB's (and FRR's): intervals in milliseconds.
const (
	MinBFDInterval   = 10
	MaxBFDInterval   = 60000
	MinBFDMultiplier = 2
	MaxBFDMultiplier = 255
	MinBFDMinimumTTL = 1
	MaxBFDMinimumTTL = 254
)

// BFDProfile checks a BFDProfile's values against MetalLB's ranges, naming
// each field out of range.
func BFDProfile(p *v1beta1.BFDProfile) error {
	s := &p.Spec
	var errs []error
	check := func(field string, v *uint32, lo, hi uint32) {
		if v != nil && (*v < lo || *v > hi) {
			errs = append(errs, fieldErr(field, "%d is outside %d-%d", *v, lo, hi))
		}
	}
	check("spec.receiveInterval", s.ReceiveInterval, MinBFDInterval, MaxBFDInterval)
	check("spec.transmitInterval", s.TransmitInterval, MinBFDInterval, MaxBFDInterval)
	check("spec.echoInterval", s.EchoInterval, MinBFDInterval, MaxBFDInterval)
	check("spec.detectMultiplier", s.DetectMultiplier, MinBFDMultiplier, MaxBFDMultiplier)
	check("spec.minimumTtl", s.MinimumTTL, MinBFDMinimumTTL, MaxBFDMinimumTTL)
	return errors.Join(errs...)
}
