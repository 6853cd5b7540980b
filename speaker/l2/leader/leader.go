package leader

import (
	"cmp"
	"net/netip"
	"slices"
)

// Service is one Service announced in layer 2 mode, as the caller sees it.
type Service struct {
	// Key names the Service (namespace/name). It is its identity only when
	// IP is invalid.
	Key string
	// IP is the address answered for; for a dual-stack Service, the first
	// ingress IP (both families then share a node, as in MetalLB). It is what
	// the node ranking hashes, so Services that share an IP share a node. An
	// invalid IP makes the Key the identity instead.
	IP netip.Addr
	// Nodes are the nodes eligible to answer: alive, matched by an
	// L2Advertisement, and for externalTrafficPolicy Local holding a ready
	// endpoint. Order and duplicates do not matter; "" is ignored.
	Nodes []string
	// Down are the nodes that would be eligible but are not alive (the Node
	// still exists, its speaker is gone). They keep their place in the
	// balance while they are away, so a node failing moves its own Services
	// and no others, and they move back when it returns. Leaving them out is
	// also correct; then a failure moves a few more (see the package doc).
	Down []string
}

// overflowPercent is how far above the mean a node's load may go (the 1.1x
// goal of issue 14). Smaller balances better and moves more on every change.
const overflowPercent = 10

// Assign returns the node that answers ARP/NDP for each of svcs, in the same
// order; "" for a Service without an eligible node (unless another Service on
// its IP has one). A Service's node depends only on the set of inputs, not on
// their order, so every speaker computes the same. Services sharing an IP get
// one node: one eligible for all of them that have any if there is one, else
// one eligible for any of them.
func Assign(svcs []Service) []string {
	a := newAssignment(svcs)
	a.place()
	out := make([]string, len(svcs))
	for i := range a.units {
		u := &a.units[i]
		if u.node < 0 {
			continue
		}
		out[u.first] = a.names[u.node]
		for _, si := range u.more {
			out[si] = a.names[u.node]
		}
	}
	return out
}

// identity is what a unit is hashed and ordered by.
type identity struct {
	ip  netip.Addr
	key string // only when ip is invalid
}

func (x identity) compare(y identity) int {
	if c := x.ip.Compare(y.ip); c != 0 {
		return c
	}
	return cmp.Compare(x.key, y.key)
}

// unit is what one node answers for: one IP and the Services on it.
type unit struct {
	id    identity
	hash  uint64
	first int32   // index of its (first) Service
	more  []int32 // the others on its IP
	up    []int32 // eligible nodes, sorted by index; shared, read-only
	home  []int32 // up and down nodes, sorted; shared, read-only

	// The running phase.
	cands  []int32 // its candidates: home, then up
	ranked bool    // cands is a private copy in rank order
	next   int     // rank asked in the coming round
	node   int32   // -1 while unplaced
}

type assignment struct {
	names  []string
	hashes []uint64
	load   []int
	units  []unit
}

func newAssignment(svcs []Service) *assignment {
	a := &assignment{units: make([]unit, 0, len(svcs))}
	index := map[string]int32{}
	// Callers usually pass one node slice to every Cluster-policy Service:
	// resolve each distinct slice once.
	type sliceID struct {
		first *string
		n     int
	}
	resolved := map[sliceID][]int32{}
	var lastNodes []string // or a new slice per Service with the same names
	var last []int32
	resolve := func(nodes []string) []int32 {
		if len(nodes) == 0 {
			return nil
		}
		sid := sliceID{&nodes[0], len(nodes)}
		if c, ok := resolved[sid]; ok {
			return c
		}
		if !slices.Equal(nodes, lastNodes) {
			c := make([]int32, 0, len(nodes))
			for _, name := range nodes {
				if name == "" {
					continue
				}
				i, ok := index[name]
				if !ok {
					i = int32(len(a.names))
					index[name] = i
					a.names = append(a.names, name)
					a.hashes = append(a.hashes, mix(fnv(name)))
				}
				c = append(c, i)
			}
			slices.Sort(c)
			lastNodes, last = nodes, slices.Compact(c)
		}
		resolved[sid] = last
		return last
	}
	type both struct{ up, home []int32 }
	withDown := map[[2]sliceID]both{}
	nodes := func(s *Service) both {
		up := resolve(s.Nodes)
		if len(s.Down) == 0 {
			return both{up, up}
		}
		k := [2]sliceID{{&s.Down[0], len(s.Down)}}
		if len(s.Nodes) > 0 {
			k[1] = sliceID{&s.Nodes[0], len(s.Nodes)}
		}
		if b, ok := withDown[k]; ok {
			return b
		}
		down := resolve(s.Down)
		home := slices.Concat(up, down)
		slices.Sort(home)
		b := both{up, slices.Compact(home)} // a node both up and down is up
		withDown[k] = b
		return b
	}

	// Pointer-free keys: the garbage collector does not scan the map.
	byIP := make(map[[16]byte]int32, len(svcs))
	byKey := map[string]int32{}
	var members [][]both // per unit with several Services: each one's nodes
	for i := range svcs {
		s := &svcs[i]
		id := identity{ip: s.IP.Unmap().WithZone("")}
		ui, ok := int32(0), false
		if id.ip.IsValid() {
			ui, ok = byIP[id.ip.As16()]
		} else {
			id.key = s.Key
			ui, ok = byKey[id.key]
		}
		b := nodes(s)
		if ok {
			u := &a.units[ui]
			u.more = append(u.more, int32(i))
			if len(members) < len(a.units) {
				members = append(members, make([][]both, len(a.units)-len(members))...)
			}
			if members[ui] == nil {
				members[ui] = []both{{u.up, u.home}}
			}
			members[ui] = append(members[ui], b)
			continue
		}
		if id.ip.IsValid() {
			byIP[id.ip.As16()] = int32(len(a.units))
		} else {
			byKey[id.key] = int32(len(a.units))
		}
		a.units = append(a.units, unit{id: id, hash: unitHash(id), first: int32(i), up: b.up, home: b.home, node: -1})
	}
	for ui, m := range members {
		if m == nil {
			continue
		}
		var ups, homes [][]int32
		for _, b := range m {
			ups, homes = append(ups, b.up), append(homes, b.home)
		}
		a.units[ui].up, a.units[ui].home = shared(ups), shared(homes)
	}
	a.load = make([]int, len(a.names))
	return a
}

// shared returns the nodes every member with any lists, or if none, those
// any lists.
func shared(members [][]int32) []int32 {
	members = slices.DeleteFunc(slices.Clone(members), func(m []int32) bool { return len(m) == 0 })
	all := slices.Concat(members...)
	slices.Sort(all)
	var every, some []int32
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j] == all[i] {
			j++
		}
		some = append(some, all[i])
		if j-i == len(members) {
			every = append(every, all[i])
		}
		i = j
	}
	if len(every) > 0 {
		return every
	}
	return some
}

// capacity is the most units a node may hold: n units over nodes nodes, at
// most overflowPercent above the mean, and never below the mean rounded up.
func capacity(n, nodes int) int {
	if nodes == 0 {
		return 0
	}
	return max((n+nodes-1)/nodes, n*(100+overflowPercent)/(100*nodes))
}

// place runs the two phases: every unit over its up and down nodes, then the
// units whose node is not up, over their up nodes, around the others.
func (a *assignment) place() {
	var home, up []int32
	for i := range a.units {
		u := &a.units[i]
		if len(u.home) > 0 {
			home = append(home, int32(i))
			u.cands = u.home
		}
		if len(u.up) > 0 {
			up = append(up, int32(i))
		}
	}
	a.rounds(home, capacity(len(home), a.distinct(home, func(u *unit) []int32 { return u.home })))

	clear(a.load)
	var again []int32
	for _, ui := range home {
		u := &a.units[ui]
		if _, ok := slices.BinarySearch(u.up, u.node); ok {
			a.load[u.node]++
			continue
		}
		u.node = -1
		if len(u.up) > 0 {
			u.cands, u.ranked, u.next = u.up, false, 0
			again = append(again, ui)
		}
	}
	if len(again) > 0 {
		a.rounds(again, capacity(len(up), a.distinct(up, func(u *unit) []int32 { return u.up })))
	}
}

// distinct counts the nodes that are candidates of any of units.
func (a *assignment) distinct(units []int32, cands func(*unit) []int32) int {
	seen := make([]bool, len(a.names))
	n := 0
	var prev []int32
	for _, ui := range units {
		cs := cands(&a.units[ui])
		if len(cs) == len(prev) && (len(cs) == 0 || &cs[0] == &prev[0]) {
			continue // usually one slice for all
		}
		prev = cs
		for _, c := range cs {
			if !seen[c] {
				seen[c] = true
				n++
			}
		}
	}
	return n
}

// proposal is a unit asking a node, with the pair's score (or, while a unit
// ranks its candidates, a node with its score).
type proposal struct {
	unit  int32
	score uint64
}

// rounds places pending units on their candidates, no node above cap counting
// the load it already has: in round r each unit asks its r-th node, and a node
// takes the highest scores first, as many as it has room for.
func (a *assignment) rounds(pending []int32, cap int) {
	pending = slices.Clone(pending)
	var left []int32
	asks := make([][]proposal, len(a.names))
	var asked []int32 // nodes with proposals this round
	for len(pending) > 0 {
		for _, ui := range pending {
			node, score := a.choice(&a.units[ui])
			if len(asks[node]) == 0 {
				asked = append(asked, node)
			}
			asks[node] = append(asks[node], proposal{ui, score})
		}
		pending = pending[:0]
		for _, node := range asked {
			ps := asks[node]
			room := cap - a.load[node]
			if len(ps) > room {
				slices.SortFunc(ps, func(x, y proposal) int {
					ux, uy := &a.units[x.unit], &a.units[y.unit]
					if c := cmp.Compare(len(ux.cands), len(uy.cands)); c != 0 {
						return c
					}
					if c := cmp.Compare(y.score, x.score); c != 0 {
						return c
					}
					return ux.id.compare(uy.id)
				})
			}
			for i, p := range ps {
				u := &a.units[p.unit]
				switch {
				case i < room:
					u.node = node
					a.load[node]++
				case u.next+1 < len(u.cands):
					u.next++
					pending = append(pending, p.unit)
				default:
					left = append(left, p.unit)
				}
			}
			asks[node] = ps[:0]
		}
		asked = asked[:0]
	}

	// Every candidate full: only when candidates differ between units.
	slices.SortFunc(left, func(x, y int32) int { return a.units[x].id.compare(a.units[y].id) })
	for _, ui := range left {
		u := &a.units[ui]
		best := u.cands[0]
		for _, c := range u.cands[1:] {
			if a.load[c] < a.load[best] {
				best = c
			}
		}
		u.node = best
		a.load[best]++
	}
}

// choice returns the node u asks in this round (its next-th in rank order)
// and the pair's score. The first round needs only the best node; ranking
// every candidate is left to the few units that overflow.
func (a *assignment) choice(u *unit) (int32, uint64) {
	if u.next == 0 {
		best, bestScore := u.cands[0], score(u.hash, a.hashes[u.cands[0]])
		for _, c := range u.cands[1:] {
			if s := score(u.hash, a.hashes[c]); a.before(s, c, bestScore, best) {
				best, bestScore = c, s
			}
		}
		return best, bestScore
	}
	if !u.ranked {
		ranked := make([]proposal, len(u.cands))
		for i, c := range u.cands {
			ranked[i] = proposal{c, score(u.hash, a.hashes[c])}
		}
		slices.SortFunc(ranked, func(x, y proposal) int {
			switch {
			case a.before(x.score, x.unit, y.score, y.unit):
				return -1
			case a.before(y.score, y.unit, x.score, x.unit):
				return 1
			}
			return 0
		})
		c := make([]int32, len(ranked))
		for i, r := range ranked {
			c[i] = r.unit
		}
		u.cands, u.ranked = c, true
	}
	node := u.cands[u.next]
	return node, score(u.hash, a.hashes[node])
}

// before reports whether node x (pair score sx) ranks ahead of node y.
func (a *assignment) before(sx uint64, x int32, sy uint64, y int32) bool {
	if sx != sy {
		return sx > sy
	}
	return a.names[x] < a.names[y]
}
