package check

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// ECMPMatcher matches a Router whose ECMP set of a prefix is exactly a set
// of next-hops, in its RIB and in its kernel FIB.
type ECMPMatcher struct {
	prefix  netip.Prefix
	want    []netip.Addr
	ribOnly bool
	within  time.Duration
	from    time.Time
	timed   bool

	failure string
	final   bool // the match can no longer change (reached, but too late)
	// Took is how long after the WithinDuration start the set was reached
	// (from the RIB history), once a timed match has succeeded or failed.
	Took time.Duration
}

// HaveECMP matches a Router that holds exactly hops (any order) as the
// next-hops of prefix (an address, a prefix, or their text) in its RIB and
// kernel FIB. Empty hops: no route at all.
func HaveECMP(prefix any, hops []netip.Addr) *ECMPMatcher {
	return &ECMPMatcher{prefix: Prefix(prefix), want: backend.Sorted(hops)}
}

// BeWithdrawn matches a Router with no route for prefix, in RIB and FIB.
func BeWithdrawn(prefix any) *ECMPMatcher { return HaveECMP(prefix, nil) }

// InRIBOnly skips the kernel FIB.
func (m *ECMPMatcher) InRIBOnly() *ECMPMatcher { m.ribOnly = true; return m }

// WithinDuration also requires that the RIB reached the set no later than d
// after from, by the RIB's own timestamp of the change. A set that did not
// change at all since from counts as reached at from.
func (m *ECMPMatcher) WithinDuration(d time.Duration, from time.Time) *ECMPMatcher {
	m.within, m.from, m.timed = d, from, true
	return m
}

// Match implements types.GomegaMatcher.
func (m *ECMPMatcher) Match(actual any) (bool, error) {
	r, err := asRouter(actual)
	if err != nil {
		return false, err
	}
	m.failure, m.final = "", false
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	topo := r.R.Topology()
	set, err := r.R.Route(ctx, r.Name, m.prefix)
	if err != nil {
		m.failure = fmt.Sprintf("%s: reading the route of %s: %v", r.Name, m.prefix, err)
		return false, nil
	}
	got := set.NextHops()
	if !slices.Equal(got, m.want) {
		m.failure = fmt.Sprintf("%s: %s has next-hops %s in its RIB, want %s: %s", r.Name, m.prefix, names(topo, got), names(topo, m.want), diff(topo, got, m.want))
		return false, nil
	}
	if !m.ribOnly {
		fib, err := r.R.KernelRoute(ctx, r.Name, m.prefix)
		if err != nil {
			m.failure = fmt.Sprintf("%s: reading the kernel route of %s: %v", r.Name, m.prefix, err)
			return false, nil
		}
		if !slices.Equal(backend.Sorted(fib), m.want) {
			m.failure = fmt.Sprintf("%s: %s has next-hops %s in its RIB but %s in its kernel FIB: %s", r.Name, m.prefix, names(topo, got), names(topo, fib), diff(topo, fib, m.want))
			return false, nil
		}
	}
	if !m.timed {
		return true, nil
	}
	hist, err := r.R.History(ctx, r.Name)
	if err != nil {
		m.failure = fmt.Sprintf("%s: reading the RIB history: %v", r.Name, err)
		return false, nil
	}
	cs := backend.Since(hist, m.prefix, m.from)
	at := m.from
	if len(cs) > 0 {
		c, ok := backend.FirstTo(cs, m.want)
		if !ok {
			m.failure = fmt.Sprintf("%s: %s holds %s, but its RIB history since %s has no change to it", r.Name, m.prefix, names(topo, m.want), m.from.Format("15:04:05.000"))
			return false, nil
		}
		at = c.At
	}
	m.Took = at.Sub(m.from)
	if m.Took > m.within {
		m.final = true
		m.failure = fmt.Sprintf("%s: %s reached %s %v after %s (RIB timestamp %s), want within %v", r.Name, m.prefix, names(topo, m.want),
			m.Took.Round(time.Millisecond), m.from.Format("15:04:05.000"), at.Format("15:04:05.000"), m.within)
		return false, nil
	}
	return true, nil
}

// FailureMessage implements types.GomegaMatcher.
func (m *ECMPMatcher) FailureMessage(any) string { return m.failure }

// NegatedFailureMessage implements types.GomegaMatcher.
func (m *ECMPMatcher) NegatedFailureMessage(actual any) string {
	r, _ := asRouter(actual)
	return fmt.Sprintf("%s: %s has next-hops %s, want any other set", r.Name, m.prefix, names(r.R.Topology(), m.want))
}

// MatchMayChangeInTheFuture lets Eventually stop early once the set was
// reached too late: waiting longer cannot make it sooner.
func (m *ECMPMatcher) MatchMayChangeInTheFuture(any) bool { return !m.final }
