package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// fibState folds a ToR's FIB notifications into each prefix's last
// next-hops and when they arrived; a deleted route is absent. Only routes
// of pool count.
func fibState(evs []netns.FIBEvent, pool netip.Prefix) map[netip.Prefix]torSet {
	out := map[netip.Prefix]torSet{}
	for _, e := range evs {
		if !pool.Contains(e.Prefix.Addr()) {
			continue
		}
		if e.Delete {
			delete(out, e.Prefix)
			continue
		}
		out[e.Prefix] = torSet{hops: backend.JoinAddrs(e.NextHops), at: e.At}
	}
	return out
}

// judgeFIB compares each ToR's FIB (from fibState) with expect (prefix →
// joined next-hops) as judge compares RIBs: prefixes of pool that are not
// expected count as wrong, and Last is the notification that completed the
// last route.
func judgeFIB(expect map[netip.Prefix]string, fibs map[string]map[netip.Prefix]torSet, pool netip.Prefix) scaleVerdict {
	tors := make(map[string]*torRIB, len(fibs))
	for tor, sets := range fibs {
		tors[tor] = &torRIB{sets: sets}
	}
	v := judge(expect, tors, pool)
	if v.Example != "" {
		v.Example = "kernel FIB: " + v.Example
	}
	return v
}

// fibWatches follows every ToR's kernel FIB from before the first write.
type fibWatches map[string]*netns.FIBWatch

// watchFIBs subscribes to the route changes of every ToR's namespace.
func (l *Lab) watchFIBs() (fibWatches, error) {
	ws := fibWatches{}
	for _, tor := range l.Fabric.Topology().ToRs {
		w, err := netns.WatchFIB(l.Fabric.NetNS(tor.Name))
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("ToR %s: %w", tor.Name, err)
		}
		ws[tor.Name] = w
	}
	return ws, nil
}

// Close ends every subscription.
func (ws fibWatches) Close() {
	for _, w := range ws {
		w.Close()
	}
}

// wait waits until every ToR's FIB holds exactly expect (the RIB's sets
// once they converged) and returns the verdict, judged on the notifications
// alone. A subscription that overran (the kernel dropped notifications) is
// an error: what it missed is unknown.
func (ws fibWatches) wait(expect map[netip.Prefix]string, pool netip.Prefix, timeout time.Duration) (scaleVerdict, error) {
	deadline := time.Now().Add(timeout)
	for {
		fibs := make(map[string]map[netip.Prefix]torSet, len(ws))
		for tor, w := range ws {
			evs, err := w.Events()
			if err != nil {
				return scaleVerdict{}, fmt.Errorf("ToR %s's kernel FIB notifications: %w", tor, err)
			}
			fibs[tor] = fibState(evs, pool)
		}
		v := judgeFIB(expect, fibs, pool)
		if v.Done {
			return v, nil
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("kernel FIBs not converged %s after the RIBs: %d (ToR, prefix) routes differ, e.g. %s", timeout, v.Wrong, v.Example)
		}
		// Any ToR's next notification may complete it; poll every 20 ms
		// rather than spin, the figure is the notification's timestamp.
		time.Sleep(20 * time.Millisecond)
	}
}

// ribSets returns the sets of pool's prefixes in the first ToR's RIB (after
// convergence every ToR holds the same: the expected sets).
func (w *scaleWatch) ribSets() map[netip.Prefix]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.tors))
	for n := range w.tors {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[netip.Prefix]string{}
	if len(names) == 0 {
		return out
	}
	for p, s := range w.tors[names[0]].sets {
		if w.pool.Contains(p.Addr()) {
			out[p] = s.hops
		}
	}
	return out
}
