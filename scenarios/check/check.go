// Package check holds Gomega matchers that read like a router check:
//
//	tor := func(name string) check.Router { return check.ToR(b, name) }
//	nodes := b.Topology().Addrs
//	Eventually(tor("tor1")).Should(check.HaveECMP(ip, nodes("node1", "node3")))
//	Expect(tor("tor1")).To(check.HaveCommunity(ip, "65000:100"))
//	Eventually(tor("tor1")).WithTimeout(5 * time.Second).Should(
//		check.HaveECMP(ip, nodes("node1", "node3")).WithinDuration(time.Second, cut))
//
// The timing assertions take their figures from the ToR's timestamped RIB
// history, never from when the spec happened to look.
package check

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Reader is what the matchers read; every backend.Backend is one.
type Reader interface {
	Topology() backend.Topology
	Route(ctx context.Context, tor string, prefix netip.Prefix) (backend.Set, error)
	KernelRoute(ctx context.Context, tor string, prefix netip.Prefix) ([]netip.Addr, error)
	History(ctx context.Context, tor string) ([]backend.Change, error)
}

// Router is one ToR of a backend: the actual value of the matchers.
type Router struct {
	R    Reader
	Name string
}

// ToR names one ToR of a backend.
func ToR(r Reader, name string) Router { return Router{R: r, Name: name} }

func (r Router) String() string { return r.Name }

// readTimeout bounds one read of a ToR (a frozen router must not hang a
// matcher).
const readTimeout = 5 * time.Second

func asRouter(actual any) (Router, error) {
	r, ok := actual.(Router)
	if !ok {
		return Router{}, fmt.Errorf("expected a check.Router (check.ToR(backend, name)), got %T", actual)
	}
	return r, nil
}

// Prefix turns an address (a /32 or /128), a prefix, or their text into a
// prefix; it panics on anything else, which is a bug in the spec.
func Prefix(v any) netip.Prefix {
	switch x := v.(type) {
	case netip.Prefix:
		return x
	case netip.Addr:
		return backend.HostRoute(x)
	case string:
		if p, err := netip.ParsePrefix(x); err == nil {
			return p
		}
		return backend.HostRoute(netip.MustParseAddr(x))
	}
	panic(fmt.Sprintf("check: %T is neither an address nor a prefix", v))
}

// names renders next-hops with the names of the nodes that own them.
func names(t backend.Topology, hops []netip.Addr) string {
	if len(hops) == 0 {
		return "{} (no route)"
	}
	s := make([]string, len(hops))
	for i, a := range backend.Sorted(hops) {
		if n := t.NodeOf(a); n != a.String() {
			s[i] = n + " " + a.String()
		} else {
			s[i] = a.String()
		}
	}
	return "{" + strings.Join(s, ", ") + "}"
}

// diff says which next-hops are missing and which are extra.
func diff(t backend.Topology, got, want []netip.Addr) string {
	var missing, extra []netip.Addr
	for _, a := range want {
		if !slices.Contains(got, a) {
			missing = append(missing, a)
		}
	}
	for _, a := range got {
		if !slices.Contains(want, a) {
			extra = append(extra, a)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+names(t, missing))
	}
	if len(extra) > 0 {
		parts = append(parts, "unexpected "+names(t, extra))
	}
	return strings.Join(parts, ", ")
}

// ReachedAt finds in the ToR's history the first change of prefix at or
// after from to exactly want; ok false when there is none.
func ReachedAt(ctx context.Context, r Router, prefix netip.Prefix, from time.Time, want []netip.Addr) (time.Time, bool, error) {
	hist, err := r.R.History(ctx, r.Name)
	if err != nil {
		return time.Time{}, false, err
	}
	c, ok := backend.FirstTo(backend.Since(hist, prefix, from), want)
	return c.At, ok, nil
}
