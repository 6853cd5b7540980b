package allocator

import "github.com/ecmplb/ecmplb/internal/validation"

// Range is an inclusive range of addresses of one family.
type Range = validation.Range

// FieldError names the field of a pool that holds bad input.
type FieldError = validation.FieldError

// ParseRange parses one pool address entry: a CIDR ("203.0.113.0/24",
// "2001:db8::/64") or an inclusive range of two addresses of one family
// ("203.0.113.10-203.0.113.20"). The rule is validation.ParseRange, which
// the speaker applies too.
func ParseRange(s string) (Range, error) { return validation.ParseRange(s) }

// ParseAddresses parses a pool's spec.addresses. It rejects an empty list,
// bad entries and entries overlapping each other, naming the field.
func ParseAddresses(entries []string) ([]Range, error) { return validation.PoolAddresses(entries) }
