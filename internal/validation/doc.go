// Package validation holds the rules that decide whether a metallb.io object
// (or a Service) is usable, shared by the controller and the speaker so both
// reach the same verdict from the same objects, whatever order they saw
// them in and however often they restarted. It is pure: objects in, verdicts
// out. Every error names the field it is about; callers prefix the object.
package validation

// FieldError names the field of an object that holds bad input.
type FieldError struct {
	Field  string // e.g. "spec.addresses[1]"
	Detail string // e.g. `"10.0.0.0/33" is not a valid CIDR or range`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Detail }
