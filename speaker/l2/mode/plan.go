package mode

import (
	"net/netip"
	"slices"

	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/leader"
)

// Inputs is everything the choice of what this node answers depends on.
type Inputs struct {
	// Self is this node's name.
	Self string
	// Services are every Service announced in layer 2 mode, in any order.
	Services []*announce.L2Service
	// Alive are the nodes to hand IPs to, this node included only while it
	// may answer at all (see Decide).
	Alive []string
	// Interfaces are this node's interfaces that answer for a Service whose
	// L2Advertisement names none (see Eligible), sorted.
	Interfaces []string
}

// Plan is what this node answers, from Inputs.
type Plan struct {
	// Owner is the answering node of each Service, by key; "" when none of
	// its candidates is alive.
	Owner map[string]string
	// Answer is, per interface of this node, the IPs answered on it, sorted.
	Answer map[string][]netip.Addr
	// Serving is, per Service this node answers for, the interfaces it
	// answers on, sorted (empty when the Service names none that exist).
	Serving map[string][]string
}

// Compute chooses the answering node of every Service with leader.Assign
// over the alive candidates (the candidates not alive are passed as Down, so
// a node failing moves its own IPs only) and returns what this node answers.
// Every speaker fed the same Services and the same Alive computes the same
// owners.
func Compute(in Inputs) Plan {
	alive := map[string]bool{}
	for _, n := range in.Alive {
		alive[n] = true
	}
	svcs := make([]leader.Service, 0, len(in.Services))
	idx := make([]*announce.L2Service, 0, len(in.Services))
	for _, s := range in.Services {
		if s == nil || len(s.IPs) == 0 {
			continue
		}
		ls := leader.Service{Key: s.Key, IP: s.IPs[0]}
		for _, n := range s.Nodes {
			if alive[n] {
				ls.Nodes = append(ls.Nodes, n)
			} else {
				ls.Down = append(ls.Down, n)
			}
		}
		svcs = append(svcs, ls)
		idx = append(idx, s)
	}
	owners := leader.Assign(svcs)
	p := Plan{Owner: make(map[string]string, len(svcs)), Answer: map[string][]netip.Addr{}, Serving: map[string][]string{}}
	for i, s := range idx {
		p.Owner[s.Key] = owners[i]
		if owners[i] != in.Self || in.Self == "" {
			continue
		}
		ifs := interfacesOf(s, in.Interfaces)
		p.Serving[s.Key] = ifs
		for _, ifName := range ifs {
			p.Answer[ifName] = append(p.Answer[ifName], s.IPs...)
		}
	}
	for ifName, ips := range p.Answer {
		slices.SortFunc(ips, netip.Addr.Compare)
		p.Answer[ifName] = slices.Compact(ips)
	}
	return p
}

// interfacesOf returns the interfaces s is answered on here: those its
// L2Advertisements name, and with AllInterfaces every eligible one.
func interfacesOf(s *announce.L2Service, eligible []string) []string {
	out := slices.Clone(s.Interfaces)
	if s.AllInterfaces {
		out = append(out, eligible...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
