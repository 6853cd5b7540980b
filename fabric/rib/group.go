package rib

import (
	"net/netip"
)

// EventPath is one path of a best-path event as the BGP speaker reports it: GoBGP's
// WatchEvent BEST stream with multipath carries, for each changed prefix, the complete
// new equal-cost set, or a single withdrawn path when the set became empty.
type EventPath struct {
	Prefix   netip.Prefix
	Path     Path
	Withdraw bool
}

// Group turns one event's paths into per-prefix replacement updates, in the order the
// prefixes first appear. A prefix whose paths are all withdrawals gets an empty set.
func Group(paths []EventPath) []Update {
	idx := map[netip.Prefix]int{}
	var out []Update
	for _, p := range paths {
		prefix := p.Prefix.Masked()
		i, ok := idx[prefix]
		if !ok {
			i = len(out)
			idx[prefix] = i
			out = append(out, Update{Prefix: prefix})
		}
		if !p.Withdraw {
			out[i].Paths = append(out[i].Paths, p.Path)
		}
	}
	return out
}
