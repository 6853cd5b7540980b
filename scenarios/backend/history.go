package backend

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Since returns the changes of prefix at or after from (every prefix when
// prefix is the zero value).
func Since(hist []Change, prefix netip.Prefix, from time.Time) []Change {
	var out []Change
	for _, c := range hist {
		if (!prefix.IsValid() || c.Prefix == prefix) && !c.At.Before(from) {
			out = append(out, c)
		}
	}
	return out
}

// FirstTo returns the first change whose new set is exactly want (nil:
// withdrawn).
func FirstTo(cs []Change, want []netip.Addr) (Change, bool) {
	w := Sorted(want)
	for _, c := range cs {
		if slices.Equal(Sorted(c.New), w) {
			return c, true
		}
	}
	return Change{}, false
}

// FirstWithout returns the first change whose new set lacks addr.
func FirstWithout(cs []Change, addr netip.Addr) (Change, bool) {
	for _, c := range cs {
		if !slices.Contains(c.New, addr) {
			return c, true
		}
	}
	return Change{}, false
}

// SettledAt returns when the last of cs happened, which must have been to
// want; the zero time when cs is empty (nothing changed).
func SettledAt(cs []Change, want []netip.Addr) (time.Time, error) {
	if len(cs) == 0 {
		return time.Time{}, nil
	}
	last := cs[len(cs)-1]
	if !slices.Equal(Sorted(last.New), Sorted(want)) {
		return time.Time{}, fmt.Errorf("%s last changed to {%s} at %s, not to {%s}", last.Prefix,
			JoinAddrs(last.New), last.At.Format("15:04:05.000"), JoinAddrs(Sorted(want)))
	}
	return last.At, nil
}

// Sorted returns a sorted copy of a.
func Sorted(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// JoinAddrs renders addresses comma-separated.
func JoinAddrs(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

// WaitSets waits until every ToR holds exactly want[prefix] for every prefix
// (empty: no route), in its RIB and kernel FIB, for at most timeout. A
// failure names the ToR and says whether a process died.
func WaitSets(ctx context.Context, b Backend, want map[netip.Prefix][]netip.Addr, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prefixes := make([]netip.Prefix, 0, len(want))
	for p := range want {
		prefixes = append(prefixes, p)
	}
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range prefixes {
		for _, tor := range b.Topology().ToRNames() {
			if err := b.WaitRoute(ctx, tor, p, want[p]); err != nil {
				return errors.Join(fmt.Errorf("%s → {%s}: %s: %w", p, JoinAddrs(Sorted(want[p])), tor, err), b.CheckAlive())
			}
		}
	}
	return nil
}

// WaitBFDUp waits until every ToR that runs BFD with node has the session
// Up, for at most timeout per ToR; the error names the ToR.
func WaitBFDUp(ctx context.Context, b Backend, node string, timeout time.Duration) error {
	for _, tor := range b.Topology().BFDToRs(node) {
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := b.WaitBFD(wctx, tor, node, "Up")
		cancel()
		if err != nil {
			return fmt.Errorf("%s: BFD with %s not Up within %v: %w", tor, node, timeout, err)
		}
	}
	return nil
}

// ChangesSince reads a ToR's history of prefix at or after from.
func ChangesSince(ctx context.Context, b Backend, tor string, prefix netip.Prefix, from time.Time) ([]Change, error) {
	hist, err := b.History(ctx, tor)
	if err != nil {
		return nil, err
	}
	return Since(hist, prefix, from), nil
}

// HostRoute is the /32 (or /128) of an address.
func HostRoute(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
