package check

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// PathMatcher matches a Router whose every path of a prefix carries an
// attribute.
type PathMatcher struct {
	prefix  netip.Prefix
	what    string
	ok      func(backend.Path) bool
	show    func(backend.Path) string
	failure string
}

// Match implements types.GomegaMatcher.
func (m *PathMatcher) Match(actual any) (bool, error) {
	r, err := asRouter(actual)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	set, err := r.R.Route(ctx, r.Name, m.prefix)
	if err != nil {
		m.failure = fmt.Sprintf("%s: reading the route of %s: %v", r.Name, m.prefix, err)
		return false, nil
	}
	if len(set.Paths) == 0 {
		m.failure = fmt.Sprintf("%s: no route for %s, want one with %s", r.Name, m.prefix, m.what)
		return false, nil
	}
	topo := r.R.Topology()
	var bad []string
	for _, p := range set.Paths {
		if !m.ok(p) {
			bad = append(bad, fmt.Sprintf("via %s: %s", topo.NodeOf(p.NextHop), m.show(p)))
		}
	}
	if len(bad) > 0 {
		m.failure = fmt.Sprintf("%s: %s: %d of %d paths lack %s (%s)", r.Name, m.prefix, len(bad), len(set.Paths), m.what, strings.Join(bad, "; "))
		return false, nil
	}
	return true, nil
}

// FailureMessage implements types.GomegaMatcher.
func (m *PathMatcher) FailureMessage(any) string { return m.failure }

// NegatedFailureMessage implements types.GomegaMatcher.
func (m *PathMatcher) NegatedFailureMessage(actual any) string {
	r, _ := asRouter(actual)
	return fmt.Sprintf("%s: every path of %s has %s, want some without", r.Name, m.prefix, m.what)
}

// HaveCommunity matches a Router whose every path of prefix carries the
// standard community ("65000:100").
func HaveCommunity(prefix any, community string) *PathMatcher {
	return &PathMatcher{prefix: Prefix(prefix), what: "community " + community,
		ok: func(p backend.Path) bool { return slices.Contains(p.Communities, community) },
		show: func(p backend.Path) string {
			if len(p.Communities) == 0 {
				return "no communities"
			}
			return "communities " + strings.Join(p.Communities, " ")
		}}
}

// HaveLocalPref matches a Router whose every path of prefix carries
// LOCAL_PREF pref (iBGP only: eBGP strips it).
func HaveLocalPref(prefix any, pref uint32) *PathMatcher {
	return &PathMatcher{prefix: Prefix(prefix), what: fmt.Sprintf("local-pref %d", pref),
		ok:   func(p backend.Path) bool { return p.LocalPref == pref },
		show: func(p backend.Path) string { return fmt.Sprintf("local-pref %d", p.LocalPref) }}
}

// HaveASPath matches a Router whose every path of prefix has exactly this AS
// path.
func HaveASPath(prefix any, asPath ...uint32) *PathMatcher {
	return &PathMatcher{prefix: Prefix(prefix), what: fmt.Sprintf("AS path %v", asPath),
		ok:   func(p backend.Path) bool { return slices.Equal(p.ASPath, asPath) },
		show: func(p backend.Path) string { return fmt.Sprintf("AS path %v", p.ASPath) }}
}
