package bgp

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// Attrs are the attributes of one announced prefix towards one peer.
type Attrs struct {
	LocalPref   uint32
	Communities []announce.Community
}

func (a Attrs) equal(b Attrs) bool {
	return a.LocalPref == b.LocalPref && slices.Equal(a.Communities, b.Communities)
}

// change is one path operation for one peer: announce with Attrs, or withdraw (nil).
type change struct {
	peer   string
	prefix netip.Prefix
	attrs  *Attrs
	isNew  bool // announced where nothing was before
}

// contribution is what one Service wants for a prefix.
type contribution struct {
	svc   string
	attrs Attrs
}

type prefixEntry struct {
	// contrib: usually one element (a /32 belongs to one Service, or a few sharing
	// an IP); a slice is far smaller than a map at 10,000s of prefixes.
	contrib []contribution
	// sent is what the table has handed out to be announced (the merged
	// attributes); nil: nothing. Whether GoBGP holds it is the session's
	// business: it keeps the prefixes whose call failed and retries them.
	sent *Attrs
}

func (e *prefixEntry) set(svc string, a Attrs) {
	for i := range e.contrib {
		if e.contrib[i].svc == svc {
			e.contrib[i].attrs = a
			return
		}
	}
	e.contrib = append(e.contrib, contribution{svc, a})
}

func (e *prefixEntry) remove(svc string) {
	for i := range e.contrib {
		if e.contrib[i].svc == svc {
			e.contrib = slices.Delete(e.contrib, i, i+1)
			return
		}
	}
}

// table holds, per peer and prefix, which Services want it and with which attributes.
// Several Services share a prefix when advertisements aggregate; the announced
// attributes are then the union of communities and the (single) local-pref.
type table struct {
	peers    map[string]map[netip.Prefix]*prefixEntry
	services map[string][]announce.Route
}

func newTable() *table {
	return &table{peers: map[string]map[netip.Prefix]*prefixEntry{}, services: map[string][]announce.Route{}}
}

type routeKey struct {
	peer   string
	prefix netip.Prefix
}

// apply replaces the routes of one Service and returns the path operations needed.
// Only prefixes that this Service had or now has are looked at. On a local-pref
// conflict with another Service sharing an aggregated prefix nothing changes.
func (t *table) apply(svc string, routes []announce.Route) ([]change, error) {
	old := t.services[svc]
	want := make(map[routeKey]Attrs, len(routes))
	for _, r := range routes {
		want[routeKey{r.Peer, r.Prefix}] = Attrs{LocalPref: r.LocalPref, Communities: r.Communities}
	}
	// Conflict check first so that a rejected update leaves no trace.
	for k, a := range want {
		if a.LocalPref == 0 {
			continue
		}
		e := t.peers[k.peer][k.prefix]
		if e == nil {
			continue
		}
		for _, o := range e.contrib {
			if o.svc != svc && o.attrs.LocalPref != 0 && o.attrs.LocalPref != a.LocalPref {
				return nil, fmt.Errorf("service %s: prefix %s towards BGPPeer %q: localPref %d conflicts with %d from service %s",
					svc, k.prefix, k.peer, a.LocalPref, o.attrs.LocalPref, o.svc)
			}
		}
	}
	touched := make(map[routeKey]bool, len(old)+len(want))
	for _, r := range old {
		k := routeKey{r.Peer, r.Prefix}
		if _, keep := want[k]; !keep {
			if e := t.peers[k.peer][k.prefix]; e != nil {
				e.remove(svc)
			}
			touched[k] = true
		}
	}
	for k, a := range want {
		pt := t.peers[k.peer]
		if pt == nil {
			pt = map[netip.Prefix]*prefixEntry{}
			t.peers[k.peer] = pt
		}
		e := pt[k.prefix]
		if e == nil {
			e = &prefixEntry{}
			pt[k.prefix] = e
		}
		e.set(svc, a)
		touched[k] = true
	}
	if len(routes) == 0 {
		delete(t.services, svc)
	} else {
		t.services[svc] = slices.Clone(routes)
	}
	var out []change
	for k := range touched {
		if c, ok := t.settle(k); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

// settle recomputes the merged attributes of one (peer, prefix) and returns the
// operation to perform if they changed.
func (t *table) settle(k routeKey) (change, bool) {
	pt := t.peers[k.peer]
	e := pt[k.prefix]
	if e == nil {
		return change{}, false
	}
	if len(e.contrib) == 0 {
		delete(pt, k.prefix)
		if len(pt) == 0 {
			delete(t.peers, k.peer)
		}
		if e.sent == nil {
			return change{}, false
		}
		return change{peer: k.peer, prefix: k.prefix}, true
	}
	var m Attrs
	for _, c := range e.contrib {
		a := c.attrs
		if a.LocalPref != 0 {
			m.LocalPref = a.LocalPref
		}
		m.Communities = mergeCommunities(m.Communities, a.Communities)
	}
	if e.sent != nil && e.sent.equal(m) {
		return change{}, false
	}
	isNew := e.sent == nil
	e.sent = &m
	return change{peer: k.peer, prefix: k.prefix, attrs: &m, isNew: isNew}, true
}

func mergeCommunities(a, b []announce.Community) []announce.Community {
	if len(a) == 0 {
		return b
	}
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y announce.Community) int {
		switch {
		case x == y:
			return 0
		case x.Large != y.Large:
			if !x.Large {
				return -1
			}
			return 1
		case !x.Large:
			return cmpU(x.Value, y.Value)
		case x.Global != y.Global:
			return cmpU(x.Global, y.Global)
		case x.Local1 != y.Local1:
			return cmpU(x.Local1, y.Local1)
		}
		return cmpU(x.Local2, y.Local2)
	})
	return out
}

func cmpU(a, b uint32) int {
	if a < b {
		return -1
	}
	return 1
}

// wanted returns what is to be announced for one prefix towards peer.
func (t *table) wanted(peer string, prefix netip.Prefix) (Attrs, bool) {
	if e := t.peers[peer][prefix]; e != nil && e.sent != nil {
		return *e.sent, true
	}
	return Attrs{}, false
}

// announced returns every prefix announced towards peer with its attributes.
func (t *table) announced(peer string) map[netip.Prefix]Attrs {
	out := map[netip.Prefix]Attrs{}
	for p, e := range t.peers[peer] {
		if e.sent != nil {
			out[p] = *e.sent
		}
	}
	return out
}
