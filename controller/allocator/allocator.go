package allocator

import (
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Allocator holds pools and allocations. It is safe for concurrent use.
type Allocator struct {
	mu      sync.Mutex
	pools   map[string]*pool
	order   []*pool // auto-assign candidate order
	ips     map[netip.Addr]*ipEntry
	svcs    map[string][]netip.Addr
	sharing map[string]map[netip.Addr]struct{} // sharing key -> IPs
	outside map[string]int                     // pool name -> IPs left outside it
	nOut    int                                // IPs in no pool
}

// ipEntry is one allocated IP.
type ipEntry struct {
	pool     *pool  // nil when the IP lies in no pool
	lastPool string // pool it was last in, for IPs outside every pool
	key      string // sharing key; "" means exclusive
	holders  []holder
}

type holder struct {
	svc   string
	share *shareTerms // nil without a sharing key
}

// shareTerms is what a holder that may share its IP shares it on. Apart
// from the holder, so that the holder of an IP that is not shared (most of
// them) is 24 bytes, not 64.
type shareTerms struct {
	ports    []Port
	local    bool
	selector map[string]string
}

// New returns an empty allocator.
func New() *Allocator {
	return &Allocator{
		pools:   map[string]*pool{},
		ips:     map[netip.Addr]*ipEntry{},
		svcs:    map[string][]netip.Addr{},
		sharing: map[string]map[netip.Addr]struct{}{},
		outside: map[string]int{},
	}
}

// SetPool adds or replaces a pool. Invalid addresses or an overlap with
// another pool return a *FieldError and leave the previous configuration in
// place. Allocations that fall outside the new ranges are kept (reported in
// PoolChange.Orphaned); allocations outside every pool that now fall inside
// are adopted.
func (a *Allocator) SetPool(cfg PoolConfig) (PoolChange, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	np, err := newPool(cfg)
	if err != nil {
		return PoolChange{}, err
	}
	if err := a.checkOverlaps([]*pool{np}); err != nil {
		return PoolChange{}, err
	}
	return a.install(nil, []*pool{np})[cfg.Name], nil
}

// SetPools makes cfgs the complete set of pools in one step: pools not
// listed are removed, listed pools whose configuration changed are replaced,
// the others are left alone. Because the whole set is checked at once, pools
// may trade addresses in one call. An invalid configuration or two
// overlapping pools return an error and change nothing. Allocations are never
// moved: those left outside every pool are kept and reported, per pool, in
// Orphaned; those outside every pool that now fall inside one are Adopted.
func (a *Allocator) SetPools(cfgs []PoolConfig) (map[string]PoolChange, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want := map[string]bool{}
	var add []*pool
	for _, cfg := range cfgs {
		if want[cfg.Name] {
			return nil, fmt.Errorf("IPAddressPool %q listed twice", cfg.Name)
		}
		want[cfg.Name] = true
		if old := a.pools[cfg.Name]; old != nil && reflect.DeepEqual(old.cfg, cfg) {
			continue
		}
		np, err := newPool(cfg)
		if err != nil {
			return nil, fmt.Errorf("IPAddressPool %q: %w", cfg.Name, err)
		}
		add = append(add, np)
	}
	var remove []string
	for name := range a.pools {
		if !want[name] {
			remove = append(remove, name)
		}
	}
	if err := a.checkOverlaps(add, remove...); err != nil {
		return nil, err
	}
	return a.install(remove, add), nil
}

// checkOverlaps reports the first overlap of a pool in add with another pool
// of the set that results from removing remove and installing add.
func (a *Allocator) checkOverlaps(add []*pool, remove ...string) error {
	final := map[string]*pool{}
	for name, p := range a.pools {
		if !slices.Contains(remove, name) {
			final[name] = p
		}
	}
	for _, np := range add {
		final[np.cfg.Name] = np
	}
	for _, np := range add {
		for _, name := range slices.Sorted(maps.Keys(final)) {
			if name == np.cfg.Name {
				continue
			}
			if mine, theirs, ok := np.overlaps(final[name]); ok {
				idx := slices.Index(np.ranges, mine)
				return &FieldError{
					Field: fmt.Sprintf("spec.addresses[%d]", idx),
					Detail: fmt.Sprintf("%q overlaps IPAddressPool %q (%s)",
						np.cfg.Addresses[idx], name, theirs),
				}
			}
		}
	}
	return nil
}

// install removes the pools named in remove, installs add (replacing pools of
// the same name), and moves allocations accordingly; the caller has checked
// that the result has no overlaps.
func (a *Allocator) install(remove []string, add []*pool) map[string]PoolChange {
	replaced := map[string]bool{}
	for _, name := range remove {
		replaced[name] = true
	}
	for _, np := range add {
		if a.pools[np.cfg.Name] != nil {
			replaced[np.cfg.Name] = true
		}
	}
	// Detach the allocations of every pool that goes away or changes.
	detached := map[netip.Addr]string{}
	for ip, e := range a.ips {
		if e.pool != nil && replaced[e.pool.cfg.Name] {
			name := e.pool.cfg.Name
			e.pool, e.lastPool = nil, name
			a.outside[name]++
			a.nOut++
			detached[ip] = name
		}
	}
	for _, name := range remove {
		delete(a.pools, name)
	}
	for _, np := range add {
		a.pools[np.cfg.Name] = np
	}
	changes := map[string]PoolChange{}
	if len(add) > 0 {
		for ip, e := range a.ips {
			if e.pool != nil {
				continue
			}
			for _, np := range add {
				if !np.contains(ip) {
					continue
				}
				a.leaveOutside(e)
				a.enterPool(ip, e, np)
				if detached[ip] != np.cfg.Name {
					ch := changes[np.cfg.Name]
					ch.Adopted = append(ch.Adopted, e.holding(ip))
					changes[np.cfg.Name] = ch
				}
				delete(detached, ip)
				break
			}
		}
	}
	for ip, name := range detached {
		ch := changes[name]
		ch.Orphaned = append(ch.Orphaned, a.ips[ip].holding(ip))
		changes[name] = ch
	}
	for name, ch := range changes {
		sortHoldings(ch.Orphaned)
		sortHoldings(ch.Adopted)
		changes[name] = ch
	}
	a.rebuildOrder()
	return changes
}

// DeletePool removes a pool. Its allocations are kept and reported as
// orphaned.
func (a *Allocator) DeletePool(name string) PoolChange {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pools[name] == nil {
		return PoolChange{}
	}
	return a.install([]string{name}, nil)[name]
}

func (a *Allocator) enterPool(ip netip.Addr, e *ipEntry, p *pool) {
	e.pool, e.lastPool = p, p.cfg.Name
	f := FamilyOf(ip)
	p.used[f]++
	if p.usable(ip) {
		p.free[f].take(ip)
	}
}

func (a *Allocator) leaveOutside(e *ipEntry) {
	if e.pool == nil {
		a.nOut--
	}
	if e.pool == nil && e.lastPool != "" {
		a.outside[e.lastPool]--
		if a.outside[e.lastPool] <= 0 {
			delete(a.outside, e.lastPool)
		}
	}
}

func (e *ipEntry) holding(ip netip.Addr) Holding {
	h := Holding{IP: ip}
	for _, x := range e.holders {
		h.Services = append(h.Services, x.svc)
	}
	sort.Strings(h.Services)
	return h
}

func sortHoldings(hs []Holding) {
	sort.Slice(hs, func(i, j int) bool { return hs[i].IP.Less(hs[j].IP) })
}

// rebuildOrder sorts pools for automatic assignment: pools with a
// serviceAllocation and a priority (ascending), then pools with a
// serviceAllocation and no priority, then pools without one; ties by name.
func (a *Allocator) rebuildOrder() {
	a.order = a.order[:0]
	for _, p := range a.pools {
		a.order = append(a.order, p)
	}
	rank := func(p *pool) (int, int) {
		s := p.cfg.AllocateTo
		switch {
		case s != nil && s.Priority != 0:
			return 0, s.Priority
		case s != nil:
			return 1, 0
		default:
			return 2, 0
		}
	}
	sort.Slice(a.order, func(i, j int) bool {
		ci, pi := rank(a.order[i])
		cj, pj := rank(a.order[j])
		if ci != cj {
			return ci < cj
		}
		if pi != pj {
			return pi < pj
		}
		return a.order[i].cfg.Name < a.order[j].cfg.Name
	})
}

// Lookup returns a Service's current allocation.
func (a *Allocator) Lookup(key string) (Assignment, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ips, ok := a.svcs[key]
	if !ok {
		return Assignment{}, false
	}
	return a.assignment(ips), true
}

func (a *Allocator) assignment(ips []netip.Addr) Assignment {
	out := Assignment{IPs: slices.Clone(ips)}
	for _, ip := range ips {
		e := a.ips[ip]
		if e.pool == nil {
			out.OutOfPool = append(out.OutOfPool, ip)
		} else if out.Pool == "" {
			out.Pool = e.pool.cfg.Name
		}
	}
	return out
}

// Restore registers IPs a Service already holds (from its status), without
// checking them against pools: an IP outside every pool is kept. It fails
// only when another Service holds one of the IPs and may not share it; then
// nothing is registered.
func (a *Allocator) Restore(req Request, ips []netip.Addr) (Assignment, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(ips) == 0 || len(ips) > 2 || (len(ips) == 2 && FamilyOf(ips[0]) == FamilyOf(ips[1])) {
		return Assignment{}, fail(ReasonInvalidRequest, "status holds %v: want one IP per family", ips)
	}
	for _, ip := range ips {
		if e := a.ips[ip]; e != nil && !e.onlyHolder(req.Key) {
			if err := canShare(&req, ip, e); err != nil {
				return Assignment{}, err
			}
		}
	}
	a.commit(&req, ips)
	return a.assignment(a.svcs[req.Key]), nil
}

// Assign returns the Service's allocation, allocating or changing it when
// the current one (if any) does not satisfy req. changed reports whether
// the IPs differ from before. On error the previous allocation, if any, is
// kept and returned.
func (a *Allocator) Assign(req Request) (as Assignment, changed bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.svcs[req.Key]
	if len(cur) > 0 && a.valid(&req, cur) {
		a.commit(&req, cur) // refresh ports, selector, sharing key
		return a.assignment(cur), false, nil
	}
	ips, cerr := a.choose(&req, cur)
	if cerr != nil {
		if len(cur) > 0 {
			return a.assignment(cur), false, cerr
		}
		return Assignment{}, false, cerr
	}
	a.commit(&req, ips)
	return a.assignment(ips), !slices.Equal(cur, ips), nil
}

// Release drops a Service's allocation; IPs no other Service holds become
// free. It returns what was released.
func (a *Allocator) Release(key string) (Assignment, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ips, ok := a.svcs[key]
	if !ok {
		return Assignment{}, false
	}
	as := a.assignment(ips)
	for _, ip := range ips {
		a.dropHolder(ip, key)
	}
	delete(a.svcs, key)
	return as, true
}

// valid reports whether the Service's current IPs still satisfy req.
func (a *Allocator) valid(req *Request, cur []netip.Addr) bool {
	for _, ip := range cur {
		if e := a.ips[ip]; !e.onlyHolder(req.Key) && canShare(req, ip, e) != nil {
			return false
		}
	}
	if len(req.IPs) > 0 {
		return sameSet(req.IPs, cur)
	}
	for _, ip := range cur {
		// An IP outside every pool is kept whatever pool is asked for.
		if e := a.ips[ip]; req.Pool != "" && e.pool != nil && e.pool.cfg.Name != req.Pool {
			return false
		}
	}
	fam := FamilyOf(cur[0])
	switch {
	case req.Policy == RequireDualStack:
		return len(cur) == 2
	case req.wantsDual():
		if len(cur) == 2 {
			return true
		}
		// One family kept only if its pool has no address of the other.
		p := a.ips[cur[0]].pool
		return p == nil || !p.hasFamily(1-fam)
	default:
		return len(cur) == 1 && fam == req.primary()
	}
}

func sameSet(x, y []netip.Addr) bool {
	if len(x) != len(y) {
		return false
	}
	for _, ip := range x {
		if !slices.Contains(y, ip) {
			return false
		}
	}
	return true
}

// choose picks IPs for req without changing state.
func (a *Allocator) choose(req *Request, cur []netip.Addr) ([]netip.Addr, error) {
	if len(req.IPs) > 0 {
		return a.chooseRequested(req)
	}
	var cands []*pool
	if req.Pool != "" {
		p := a.pools[req.Pool]
		if p == nil {
			return nil, fail(ReasonPoolNotFound, "IPAddressPool %q (annotation metallb.io/address-pool) does not exist", req.Pool)
		}
		cands = []*pool{p}
	} else {
		for _, p := range a.order {
			if p.cfg.AutoAssign && p.cfg.AllocateTo.matches(req) {
				cands = append(cands, p)
			}
		}
		if len(cands) == 0 {
			return nil, fail(ReasonNoMatchingPool, "no IPAddressPool with autoAssign allows this Service")
		}
	}
	var tried []string
	for _, p := range cands {
		fams := wantFamilies(req, p)
		if fams == nil {
			continue
		}
		tried = append(tried, p.cfg.Name)
		if ips, ok := a.pickFrom(p, fams, req, cur); ok {
			return ips, nil
		}
	}
	if len(tried) == 0 {
		return nil, fail(ReasonNoMatchingPool, "no candidate IPAddressPool has addresses of the families %s", familiesText(req))
	}
	return nil, fail(ReasonExhausted, "no free address for %s in IPAddressPool(s) %s", familiesText(req), strings.Join(tried, ", "))
}

func familiesText(req *Request) string {
	switch {
	case req.Policy == RequireDualStack:
		return "IPv4+IPv6"
	case req.wantsDual():
		return "IPv4 and/or IPv6"
	default:
		return req.primary().String()
	}
}

// wantFamilies returns the families to take from p, primary first, or nil
// if p cannot serve req.
func wantFamilies(req *Request, p *pool) []Family {
	prim := req.primary()
	other := 1 - prim
	switch {
	case req.Policy == RequireDualStack:
		if p.hasFamily(IPv4) && p.hasFamily(IPv6) {
			return []Family{prim, other}
		}
		return nil
	case req.wantsDual():
		switch {
		case p.hasFamily(prim) && p.hasFamily(other):
			return []Family{prim, other}
		case p.hasFamily(prim):
			return []Family{prim}
		case p.hasFamily(other):
			return []Family{other}
		}
		return nil
	default:
		if p.hasFamily(prim) {
			return []Family{prim}
		}
		return nil
	}
}

// pickFrom picks one IP per family from p: the Service's own current IP if
// it is there, else the lowest IP it may share, else the lowest free IP.
func (a *Allocator) pickFrom(p *pool, fams []Family, req *Request, cur []netip.Addr) ([]netip.Addr, bool) {
	out := make([]netip.Addr, 0, len(fams))
next:
	for _, f := range fams {
		for _, ip := range cur {
			if e := a.ips[ip]; FamilyOf(ip) == f && e.pool == p && (e.onlyHolder(req.Key) || canShare(req, ip, e) == nil) {
				out = append(out, ip)
				continue next
			}
		}
		if req.SharingKey != "" {
			var best netip.Addr
			for ip := range a.sharing[req.SharingKey] {
				e := a.ips[ip]
				if FamilyOf(ip) == f && e.pool == p && (!best.IsValid() || ip.Less(best)) && canShare(req, ip, e) == nil {
					best = ip
				}
			}
			if best.IsValid() {
				out = append(out, best)
				continue
			}
		}
		r, ok := p.free[f].t.Min()
		if !ok {
			return nil, false
		}
		out = append(out, r.First)
	}
	return out, true
}

func (a *Allocator) chooseRequested(req *Request) ([]netip.Addr, error) {
	ips := req.IPs
	if len(ips) > 2 || (len(ips) == 2 && FamilyOf(ips[0]) == FamilyOf(ips[1])) {
		return nil, fail(ReasonInvalidRequest, "requested IPs %v: at most one IPv4 and one IPv6", ips)
	}
	if len(ips) == 2 && !req.wantsDual() {
		return nil, fail(ReasonInvalidRequest, "requested IPs %v need ipFamilyPolicy PreferDualStack or RequireDualStack with two ipFamilies", ips)
	}
	if len(ips) == 1 && req.Policy == RequireDualStack {
		return nil, fail(ReasonInvalidRequest, "ipFamilyPolicy RequireDualStack needs one requested IPv4 and one IPv6, got %v", ips)
	}
	if len(ips) == 1 && !req.wantsDual() && FamilyOf(ips[0]) != req.primary() {
		return nil, fail(ReasonInvalidRequest, "requested IP %s is not of the Service's family %s", ips[0], req.primary())
	}
	for _, ip := range ips {
		if e := a.ips[ip]; e != nil && !e.onlyHolder(req.Key) {
			if err := canShare(req, ip, e); err != nil {
				return nil, err
			}
			if req.Pool != "" && e.lastPool != req.Pool {
				return nil, fail(ReasonNotInPool, "requested IP %s is not in IPAddressPool %q", ip, req.Pool)
			}
			continue
		}
		p := a.poolContaining(ip)
		if p == nil {
			return nil, fail(ReasonNotInPool, "requested IP %s is not in any IPAddressPool", ip)
		}
		if req.Pool != "" && p.cfg.Name != req.Pool {
			return nil, fail(ReasonNotInPool, "requested IP %s is in IPAddressPool %q, not in the requested %q", ip, p.cfg.Name, req.Pool)
		}
		if !p.usable(ip) {
			return nil, fail(ReasonInvalidRequest, "requested IP %s ends in .0 or .255 and IPAddressPool %q has avoidBuggyIPs", ip, p.cfg.Name)
		}
	}
	return ips, nil
}

func (a *Allocator) poolContaining(ip netip.Addr) *pool {
	for _, p := range a.order {
		if p.contains(ip) {
			return p
		}
	}
	return nil
}

func (e *ipEntry) onlyHolder(svc string) bool {
	return len(e.holders) == 1 && e.holders[0].svc == svc
}

// canShare applies the sharing rules: equal non-empty sharing keys, no
// port used twice (same number and protocol), and unless both use the
// Cluster traffic policy, identical pod selectors.
func canShare(req *Request, ip netip.Addr, e *ipEntry) error {
	var others []string
	for _, h := range e.holders {
		if h.svc != req.Key {
			others = append(others, h.svc)
		}
	}
	if req.SharingKey == "" || e.key != req.SharingKey {
		return fail(ReasonIPInUse, "IP %s is in use by %s", ip, strings.Join(others, ", "))
	}
	for _, h := range e.holders {
		if h.svc == req.Key {
			continue
		}
		t := h.share
		if t == nil { // not reached: every holder of a keyed IP has terms
			t = &shareTerms{}
		}
		for _, p := range req.Ports {
			if slices.Contains(t.ports, p) {
				return fail(ReasonIPInUse, "IP %s is shared with %s, which already uses port %s", ip, h.svc, p)
			}
		}
		if (req.Local || t.local) && !maps.Equal(req.Selector, t.selector) {
			return fail(ReasonIPInUse, "IP %s is shared with %s: with externalTrafficPolicy Local both Services need the same pod selector", ip, h.svc)
		}
	}
	return nil
}

// commit makes ips the Service's allocation.
func (a *Allocator) commit(req *Request, ips []netip.Addr) {
	// Ports and selector matter only for sharing, which needs a key.
	h := holder{svc: req.Key}
	if req.SharingKey != "" {
		h.share = &shareTerms{ports: slices.Clone(req.Ports), local: req.Local, selector: maps.Clone(req.Selector)}
	}
	for _, ip := range ips {
		e := a.ips[ip]
		if e == nil {
			e = &ipEntry{}
			a.ips[ip] = e
			if p := a.poolContaining(ip); p != nil {
				a.enterPool(ip, e, p)
			} else {
				a.nOut++
			}
		}
		if i := slices.IndexFunc(e.holders, func(x holder) bool { return x.svc == req.Key }); i >= 0 {
			e.holders[i] = h
		} else {
			e.holders = append(e.holders, h)
		}
		if len(e.holders) == 1 && e.key != req.SharingKey {
			a.setKey(ip, e, req.SharingKey)
		}
	}
	for _, ip := range a.svcs[req.Key] {
		if !slices.Contains(ips, ip) {
			a.dropHolder(ip, req.Key)
		}
	}
	a.svcs[req.Key] = slices.Clone(ips)
}

func (a *Allocator) setKey(ip netip.Addr, e *ipEntry, key string) {
	if e.key != "" {
		delete(a.sharing[e.key], ip)
		if len(a.sharing[e.key]) == 0 {
			delete(a.sharing, e.key)
		}
	}
	e.key = key
	if key != "" {
		if a.sharing[key] == nil {
			a.sharing[key] = map[netip.Addr]struct{}{}
		}
		a.sharing[key][ip] = struct{}{}
	}
}

// dropHolder removes svc from ip's holders and frees the IP when nobody
// holds it any more.
func (a *Allocator) dropHolder(ip netip.Addr, svc string) {
	e := a.ips[ip]
	if e == nil {
		return
	}
	e.holders = slices.DeleteFunc(e.holders, func(h holder) bool { return h.svc == svc })
	if len(e.holders) > 0 {
		return
	}
	a.setKey(ip, e, "")
	delete(a.ips, ip)
	if e.pool == nil {
		a.leaveOutside(e)
		return
	}
	f := FamilyOf(ip)
	e.pool.used[f]--
	if e.pool.usable(ip) {
		e.pool.free[f].add(ip)
	}
}

// Stats returns a pool's counters.
func (a *Allocator) Stats(name string) (Stats, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[name]
	if p == nil {
		return Stats{}, false
	}
	var s Stats
	for f := range 2 {
		s.Total[f] = p.total[f].int64()
		s.Assigned[f] = p.used[f]
		s.Available[f] = p.free[f].count().int64()
	}
	s.Outside = a.outside[name]
	return s, true
}

// Pools returns the names of the configured pools, sorted.
func (a *Allocator) Pools() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.pools))
}

// HasPool reports whether a pool is configured (accepted).
func (a *Allocator) HasPool(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.pools[name]
	return ok
}

// Holders returns the Services holding ip (for checks and tests).
func (a *Allocator) Holders(ip netip.Addr) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.ips[ip]
	if e == nil {
		return nil
	}
	return e.holding(ip).Services
}

// Outside returns the number of allocated IPs that lie in no pool.
func (a *Allocator) Outside() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nOut
}

// Services returns the number of Services holding an allocation.
func (a *Allocator) Services() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.svcs)
}
