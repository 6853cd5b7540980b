package validation

import (
	"fmt"
	"strconv"
	"strings"
)

// Community is one BGP community: standard (RFC 1997, "a:b") or large
// (RFC 8092, "large:a:b:c"). It is the one parsed form the webhook, the
// speaker and the announce package share.
type Community struct {
	// Large tells which of the two kinds this is.
	Large bool
	// Value is the 32-bit standard community (a<<16 | b).
	Value uint32
	// Global, Local1 and Local2 are the three parts of a large community.
	Global, Local1, Local2 uint32
}

// wellKnownCommunities are RFC 1997/3765 names accepted besides "a:b"
// (MetalLB needs an alias for them; accepting them costs nothing).
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
	"no-peer":             0xFFFFFF04,
}

// ParseCommunity parses "a:b" (16-bit halves), a well-known name such as
// "no-export", or "large:a:b:c" (32-bit parts).
func ParseCommunity(s string) (Community, error) {
	if v, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return Community{Value: v}, nil
	}
	if rest, ok := strings.CutPrefix(s, "large:"); ok {
		parts := strings.Split(rest, ":")
		if len(parts) != 3 {
			return Community{}, fmt.Errorf("large community %q: want large:a:b:c", s)
		}
		var v [3]uint32
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil {
				return Community{}, fmt.Errorf("large community %q: part %q is not a 32-bit number", s, p)
			}
			v[i] = uint32(n)
		}
		return Community{Large: true, Global: v[0], Local1: v[1], Local2: v[2]}, nil
	}
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return Community{}, fmt.Errorf("community %q: want a:b or large:a:b:c", s)
	}
	hi, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return Community{}, fmt.Errorf("community %q: %q is not a 16-bit number", s, a)
	}
	lo, err := strconv.ParseUint(b, 10, 16)
	if err != nil {
		return Community{}, fmt.Errorf("community %q: %q is not a 16-bit number", s, b)
	}
	return Community{Value: uint32(hi)<<16 | uint32(lo)}, nil
}

// String renders the community in the form ParseCommunity reads.
func (c Community) String() string {
	if c.Large {
		return fmt.Sprintf("large:%d:%d:%d", c.Global, c.Local1, c.Local2)
	}
	return fmt.Sprintf("%d:%d", c.Value>>16, c.Value&0xFFFF)
}

// Less orders standard communities before large ones, each numerically.
func (c Community) Less(d Community) bool {
	if c.Large != d.Large {
		return !c.Large
	}
	if !c.Large {
		return c.Value < d.Value
	}
	if c.Global != d.Global {
		return c.Global < d.Global
	}
	if c.Local1 != d.Local1 {
		return c.Local1 < d.Local1
	}
	return c.Local2 < d.Local2
}

// ResolveCommunity turns an advertisement's community entry into a
// Community: an alias (name -> value, from Community objects) wins over
// parsing the string itself.
func ResolveCommunity(s string, aliases map[string]string) (Community, error) {
	if v, ok := aliases[s]; ok {
		c, err := ParseCommunity(v)
		if err != nil {
			return Community{}, fmt.Errorf("alias %q: %w", s, err)
		}
		return c, nil
	}
	c, err := ParseCommunity(s)
	if err != nil {
		return Community{}, fmt.Errorf("%w (and no Community alias of that name)", err)
	}
	return c, nil
}
