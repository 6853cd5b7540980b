package watch

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// objectKey names one metallb.io object (kind as in announce.Problem).
type objectKey struct{ kind, name string }

// lastGood remembers, per object, the last version this speaker accepted, so that
// a bad edit leaves the object as it was rather than removing it. It lives only as
// long as the process: a restarted speaker rejects a bad object outright (it never
// saw a good version), and the rest of the configuration still applies.
type lastGood struct {
	pools       map[string]announce.Pool
	peers       map[string]announce.Peer // converted: keeps the password of a Secret that went missing
	ads         map[string]announce.Advertisement
	l2          map[string]announce.L2Advertisement
	communities map[string]*v1beta1.Community
}

func newLastGood() lastGood {
	return lastGood{pools: map[string]announce.Pool{}, peers: map[string]announce.Peer{},
		ads: map[string]announce.Advertisement{}, l2: map[string]announce.L2Advertisement{}, communities: map[string]*v1beta1.Community{}}
}

// record remembers every object of cfg (converted from objs) that is not bad, and
// forgets objects that no longer exist.
func (g *lastGood) record(objs Objects, cfg announce.Config, bad map[objectKey]bool) {
	pools := map[string]announce.Pool{}
	for _, p := range cfg.Pools {
		pools[p.Name] = p
		if !bad[objectKey{announce.KindPool, p.Name}] {
			g.pools[p.Name] = p
		}
	}
	peers := map[string]announce.Peer{}
	for _, p := range cfg.Peers {
		peers[p.Name] = p
		if !bad[objectKey{announce.KindPeer, p.Name}] {
			g.peers[p.Name] = p
		}
	}
	ads := map[string]announce.Advertisement{}
	for _, a := range cfg.Advertisements {
		ads[a.Name] = a
		if !bad[objectKey{announce.KindAdvertisement, a.Name}] {
			g.ads[a.Name] = a
		}
	}
	l2 := map[string]announce.L2Advertisement{}
	for _, a := range cfg.L2Advertisements {
		l2[a.Name] = a
		if !bad[objectKey{announce.KindL2, a.Name}] {
			g.l2[a.Name] = a
		}
	}
	comms := map[string]*v1beta1.Community{}
	for _, c := range objs.Communities {
		comms[c.Name] = c
		if !bad[objectKey{announce.KindCommunity, c.Name}] {
			g.communities[c.Name] = c
		}
	}
	prune(g.pools, pools)
	prune(g.peers, peers)
	prune(g.ads, ads)
	prune(g.l2, l2)
	prune(g.communities, comms)
}

func prune[V, W any](m map[string]V, exists map[string]W) {
	for k := range m {
		if _, ok := exists[k]; !ok {
			delete(m, k)
		}
	}
}

// substitute returns the configuration to put in force: objs converted, with each
// bad object that has a last good version replaced by it. subst lists the
// objects replaced; problems are those ConfigFrom finds in the result.
func (g *lastGood) substitute(objs Objects, bad map[objectKey]bool) (cfg announce.Config, subst map[objectKey]bool, problems []announce.Problem) {
	subst = map[objectKey]bool{}
	comms := make([]*v1beta1.Community, 0, len(objs.Communities))
	for _, c := range objs.Communities {
		k := objectKey{announce.KindCommunity, c.Name}
		if prev, ok := g.communities[c.Name]; ok && bad[k] {
			c, subst[k] = prev, true
		}
		comms = append(comms, c)
	}
	objs.Communities = comms
	cfg, problems = ConfigFrom(objs)
	for i, p := range cfg.Pools {
		k := objectKey{announce.KindPool, p.Name}
		if prev, ok := g.pools[p.Name]; ok && bad[k] {
			cfg.Pools[i], subst[k] = prev, true
		}
	}
	for i, p := range cfg.Peers {
		k := objectKey{announce.KindPeer, p.Name}
		if prev, ok := g.peers[p.Name]; ok && bad[k] {
			cfg.Peers[i], subst[k] = prev, true
		}
	}
	for i, a := range cfg.Advertisements {
		k := objectKey{announce.KindAdvertisement, a.Name}
		if prev, ok := g.ads[a.Name]; ok && bad[k] {
			cfg.Advertisements[i], subst[k] = prev, true
		}
	}
	for i, a := range cfg.L2Advertisements {
		k := objectKey{announce.KindL2, a.Name}
		if prev, ok := g.l2[a.Name]; ok && bad[k] {
			cfg.L2Advertisements[i], subst[k] = prev, true
		}
	}
	return cfg, subst, problems
}

// find returns the object a problem is about (nil if it is gone).
func (o Objects) find(k objectKey) runtime.Object {
	switch k.kind {
	case announce.KindPool:
		return findByName(o.Pools, k.name)
	case announce.KindPeer:
		return findByName(o.Peers, k.name)
	case announce.KindAdvertisement:
		return findByName(o.Advertisements, k.name)
	case announce.KindCommunity:
		return findByName(o.Communities, k.name)
	case announce.KindBFDProfile:
		return findByName(o.BFDProfiles, k.name)
	case announce.KindL2:
		return findByName(o.L2, k.name)
	}
	return nil
}

func findByName[T interface {
	runtime.Object
	GetName() string
}](l []T, name string) runtime.Object {
	for _, x := range l {
		if x.GetName() == name {
			return x
		}
	}
	return nil
}
