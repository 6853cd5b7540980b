package watch

import (
	"hash/fnv"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

// refreshL2 reads every Node, hands them to L2 when their names or addresses
// changed, and resolves the plan's L2Advertisements against them again when
// the plan or what it reads of the Nodes changed; it returns true then, and
// every Service's layer 2 announcement must be recomputed.
func (c *Controller) refreshL2() bool {
	objs := c.nodes.GetStore().List()
	view := make([]announce.Node, 0, len(objs))
	l2nodes := make([]announce.L2Node, 0, len(objs))
	for _, o := range objs {
		n := o.(*corev1.Node)
		view = append(view, NodeFrom(n))
		l2nodes = append(l2nodes, L2NodeFrom(n))
	}
	slices.SortFunc(view, func(a, b announce.Node) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(l2nodes, func(a, b announce.L2Node) int { return strings.Compare(a.Name, b.Name) })
	if !c.l2nodeOK || !reflect.DeepEqual(l2nodes, c.l2nodes) {
		c.o.L2.SetL2Nodes(l2nodes) // the runtime keeps its own copy
		c.l2nodes, c.l2nodeOK = l2nodes, true
	}
	if c.plan == nil || (c.l2 != nil && c.l2plan == c.plan && reflect.DeepEqual(view, c.l2view)) {
		return false
	}
	c.l2, c.l2plan, c.l2view = c.plan.L2Cluster(view), c.plan, view
	return true
}

// syncL2 recomputes one Service's layer 2 announcement and hands it to L2 if
// it changed.
func (c *Controller) syncL2(key string, in svcInput) {
	if c.o.L2 == nil || c.l2 == nil {
		return
	}
	var ls *announce.L2Service
	if in.svc != nil && !in.foreign {
		ls = c.l2.Service(in.as, endpointNodes(in.eps))
	}
	d := l2Digest(ls)
	old, had := c.l2state[key]
	if had == (ls != nil) && old == d {
		return
	}
	c.o.L2.ApplyL2(key, ls)
	if ls == nil {
		delete(c.l2state, key)
		c.log.Debug("no layer 2 announcement", "service", key)
		return
	}
	c.l2state[key] = d
	c.log.Debug("layer 2 announcement", "service", key, "ips", ls.IPs, "nodes", len(ls.Nodes))
}

// l2Digest is a 64-bit FNV-1a hash of an L2Service (0 for nil).
func l2Digest(s *announce.L2Service) uint64 {
	if s == nil {
		return 0
	}
	h := fnv.New64a()
	for _, ip := range s.IPs {
		b, _ := ip.MarshalBinary()
		h.Write(b)
		h.Write([]byte{0xff})
	}
	h.Write([]byte{0xfe})
	for _, l := range [][]string{s.Nodes, s.Interfaces} {
		for _, n := range l {
			h.Write([]byte(n))
			h.Write([]byte{0})
		}
		h.Write([]byte{0xfe})
	}
	if s.AllInterfaces {
		h.Write([]byte{1})
	}
	return h.Sum64()
}
