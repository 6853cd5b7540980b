// Package watch keeps one node's BGP announcements in step with the cluster: it
// watches Services, EndpointSlices, the node and the metallb.io objects, recompiles
// the configuration when it changes (leaving out and reporting each bad object, and
// keeping an object's last good version while it runs), and recomputes only the
// Services an event touches.
package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/validation"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/status"
)

// Announcer applies sessions and per-Service routes (bgp.Speaker implements it).
type Announcer interface {
	SetSessions([]announce.Session) error
	Apply(key string, routes []announce.Route) error
	ServicePeers(key string) []string
	// ServiceRoutes returns the routes the last successful Apply gave key.
	ServiceRoutes(key string) []announce.Route
}

// L2 receives layer 2 mode's inputs (nil: layer 2 mode off).
type L2 interface {
	// ApplyL2 sets one Service's layer 2 announcement; nil: the Service has none (withdraw).
	ApplyL2(key string, svc *announce.L2Service)
	// SetL2Nodes sets every Node of the cluster (sorted by name) with its addresses.
	SetL2Nodes(nodes []announce.L2Node)
}

// Options configure a Controller.
type Options struct {
	NodeName  string
	Namespace string // where the metallb.io objects live
	// Kube lists and watches the built-in resources (KubeListWatch;
	// NewKubeListWatch builds it from REST clients).
	Kube      KubeListWatch
	MetalLB   rest.Interface // metallb.io (NewMetalLBClient): v1beta1, BGPPeers v1beta2
	Announcer Announcer
	// Status, if set, is told which Services' status changed.
	Status status.Writer
	// Recorder, if set, receives Events on Services and the Node.
	Recorder EventRecorder
	// L2, if set, turns layer 2 mode on: the controller then also watches
	// L2Advertisements and every Node (not only its own), and tells L2 each
	// Service's announcement and the Nodes whenever they change, from the
	// goroutine of Run. ApplyL2 comes only for a change (a Service that never
	// had an announcement gets no nil); SetL2Nodes before the Services a Node
	// change affects. A Node change recomputes the layer 2 announcements of
	// every Service, not their BGP routes.
	L2 L2
	// OnSessions, if set, is called with the sessions after every accepted
	// configuration (the BFD wiring uses it).
	OnSessions func([]announce.Session)
	// OnFirstSync, if set, is called once, after the caches synced and every
	// Service was computed for the first time (the status writer waits for it).
	OnFirstSync func()
	// OnConfigState, if set, is called with every verdict on the
	// configuration: one line per rejected object naming its kind, name and
	// field (nil: every object accepted). It feeds the ConfigurationState.
	OnConfigState func(problems []string)
	// LoadBalancerClass: announce only Services of this spec.loadBalancerClass;
	// "" means only Services without a class. It must match the controller's
	// --lb-class (the rule is validation.HandlesService for both).
	LoadBalancerClass string
	// ListWatch, if set, replaces MetalLB for listing and watching a metallb.io
	// resource (plural name, e.g. "bgppeers") in Namespace; tests use it.
	ListWatch  func(resource string) cache.ListerWatcher
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// KubeListWatch lists and watches one built-in resource the speaker reads:
// "services", "nodes" (cluster-wide) and "secrets" (in namespace) of core/v1,
// "endpointslices" of discovery/v1; tweak narrows the List and the Watch.
// The speaker reaches them through plain REST clients of the lean scheme: the
// typed clients, clientset and informer factory bring every API group into the
// binary, about 10 MiB of resident memory on every node.
type KubeListWatch func(resource, namespace string, tweak func(*metav1.ListOptions)) cache.ListerWatcher

// NewKubeListWatch serves KubeListWatch from REST clients of core/v1 and
// discovery/v1 (NewKubeClients).
func NewKubeListWatch(core, discovery rest.Interface) KubeListWatch {
	return func(resource, namespace string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
		c := core
		if resource == "endpointslices" {
			c = discovery
		}
		return cache.NewFilteredListWatchFromClient(c, resource, namespace, tweak)
	}
}

// informer builds a shared informer of one built-in resource.
func informer(lw KubeListWatch, resource, namespace string, obj runtime.Object, tweak func(*metav1.ListOptions)) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformer(lw(resource, namespace, tweak), obj, 0, cache.Indexers{})
	_ = inf.SetTransform(transform)
	return inf
}

func noTweak(*metav1.ListOptions) {}

// configUpdate reports whether an update of a configuration object can change
// the configuration. A metallb.io object whose generation, labels and deletion
// are unchanged had only its status or bookkeeping written (the controller
// patches IPAddressPool status while it allocates, about once a second): on
// every node that would recompile the configuration and rewrite the
// ConfigurationState for nothing. Secrets have no generation; every update of
// theirs counts (Nodes have a handler of their own).
func configUpdate(old, cur any) bool {
	o, ok1 := old.(metav1.Object)
	n, ok2 := cur.(metav1.Object)
	if !ok1 || !ok2 {
		return true
	}
	switch cur.(type) {
	case *corev1.Secret:
		return true
	}
	// Another UID is another object under the same name (deleted and created
	// again while a watch was down: the relist reports an update), whatever
	// its generation.
	return o.GetUID() != n.GetUID() || o.GetGeneration() != n.GetGeneration() || n.GetGeneration() == 0 ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) || !o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp())
}

// sliceIndex files EndpointSlice keys under their Service's key. The slice
// event handlers keep it; a Service is queued after its entry changed, so its
// recompute sees the change. It replaces an informer index, which holds a set
// (a map) per Service: about 300 bytes each at 10,000 Services, here 50.
type sliceIndex struct {
	mu sync.Mutex
	m  map[string][]string
}

func (x *sliceIndex) set(svc, slice string, present bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	l := x.m[svc]
	i := slices.Index(l, slice)
	switch {
	case present && i < 0:
		if x.m == nil {
			x.m = map[string][]string{}
		}
		x.m[svc] = append(slices.Clip(l), slice)
	case !present && i >= 0:
		if len(l) == 1 {
			delete(x.m, svc)
		} else {
			x.m[svc] = slices.Delete(slices.Clone(l), i, i+1)
		}
	}
}

// get returns the slice keys of svc (a list the caller may keep).
func (x *sliceIndex) get(svc string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.m[svc]
}

// Controller is the speaker's imperative shell around announce.
type Controller struct {
	o   Options
	log *slog.Logger
	q   *queue
	m   *controllerMetrics

	services, slices, nodes, secrets            cache.SharedIndexInformer
	pools, ads, peers, communities, bfdProfiles cache.SharedIndexInformer
	l2ads                                       cache.SharedIndexInformer // nil: layer 2 mode off
	informers                                   []cache.SharedIndexInformer
	bySvc                                       sliceIndex // EndpointSlice keys by Service key
	plan                                        *announce.Plan
	lastCfg                                     *announce.Config
	lastNode                                    *announce.Node
	good                                        lastGood
	reported                                    map[objectKey]string // rejected objects -> message reported

	// Layer 2 mode, used by Run's goroutine only.
	l2       *announce.L2Cluster // nil until a plan is in force
	l2plan   *announce.Plan      // the plan l2 was built from
	l2view   []announce.Node     // the Nodes l2 was built from
	l2nodes  []announce.L2Node   // what SetL2Nodes was last given
	l2nodeOK bool                // SetL2Nodes was called
	l2state  map[string]uint64   // a digest of each Service's L2Service last applied

	mu sync.Mutex
	// state: a digest of the routes each announced Service was last given
	// (the routes themselves stay with the Announcer), to tell a change.
	state map[string]uint64
	ips   map[string][]netip.Addr // the addresses of those Services (metallb_speaker_announced)
}

// New builds the informers; Run starts them.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Controller{o: o, log: o.Logger, q: newQueue(), state: map[string]uint64{}, ips: map[string][]netip.Addr{},
		good: newLastGood(), reported: map[objectKey]string{}, l2state: map[string]uint64{}}
	c.m = newControllerMetrics(o.Registerer, c)
	strip := transform
	c.services = informer(o.Kube, "services", metav1.NamespaceAll, &corev1.Service{}, noTweak)
	c.slices = informer(o.Kube, "endpointslices", metav1.NamespaceAll, &discoveryv1.EndpointSlice{}, noTweak)
	// Layer 2 mode chooses the answering node among all of them; BGP mode
	// needs only this node's.
	nodeTweak := func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", o.NodeName).String()
	}
	if o.L2 != nil {
		nodeTweak = noTweak
	}
	c.nodes = informer(o.Kube, "nodes", metav1.NamespaceAll, &corev1.Node{}, nodeTweak)
	// BGPPeer password Secrets are of type basic-auth (as in MetalLB); watching
	// only those keeps every other Secret of the namespace out of memory.
	c.secrets = informer(o.Kube, "secrets", o.Namespace, &corev1.Secret{}, func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("type", validation.PasswordSecretType).String()
	})
	crd := func(resource string, obj runtime.Object) cache.SharedIndexInformer {
		var lw cache.ListerWatcher
		if o.ListWatch != nil {
			lw = o.ListWatch(resource)
		} else {
			lw = NewListWatch(o.MetalLB, resource, o.Namespace)
		}
		inf := cache.NewSharedIndexInformer(lw, obj, 0, cache.Indexers{})
		_ = inf.SetTransform(strip)
		return inf
	}
	c.pools = crd("ipaddresspools", &v1beta1.IPAddressPool{})
	c.ads = crd("bgpadvertisements", &v1beta1.BGPAdvertisement{})
	c.peers = crd("bgppeers", &v1beta2.BGPPeer{})
	c.communities = crd("communities", &v1beta1.Community{})
	c.bfdProfiles = crd("bfdprofiles", &v1beta1.BFDProfile{})
	if o.L2 != nil {
		c.l2ads = crd("l2advertisements", &v1beta1.L2Advertisement{})
	}

	svcKey := func(obj any) {
		if k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.q.add(k)
		}
	}
	_, _ = c.services.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: svcKey, DeleteFunc: svcKey,
		UpdateFunc: func(old, cur any) {
			if o, n := old.(*Svc), cur.(*Svc); o.ResourceVersion != n.ResourceVersion {
				svcKey(cur)
			}
		},
	})
	// sliceOf returns a slice's key and its Service's key ("" if none).
	sliceOf := func(obj any) (slice, svc string) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if s, ok := obj.(*Slice); ok && s.Service != "" {
			return s.Namespace + "/" + s.Name, s.Namespace + "/" + s.Service
		}
		return "", ""
	}
	// sliceKey files the slice under its Service (or removes it) and queues
	// the Service.
	sliceKey := func(obj any, present bool) {
		if slice, svc := sliceOf(obj); svc != "" {
			c.bySvc.set(svc, slice, present)
			c.q.add(svc)
		}
	}
	_, _ = c.slices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { sliceKey(obj, true) },
		DeleteFunc: func(obj any) { sliceKey(obj, false) },
		UpdateFunc: func(old, cur any) {
			// Remove first only for a slice that moved to another Service: a
			// recompute in between must never miss a slice that stays.
			if _, o := sliceOf(old); o != "" {
				if _, n := sliceOf(cur); n != o {
					sliceKey(old, false)
				}
			}
			sliceKey(cur, true)
		},
	})
	cfgChanged := cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.q.configChanged() },
		UpdateFunc: func(old, cur any) {
			if configUpdate(old, cur) {
				c.q.configChanged()
			}
		},
		DeleteFunc: func(any) { c.q.configChanged() },
	}
	cfgInformers := []cache.SharedIndexInformer{c.secrets, c.pools, c.ads, c.peers, c.communities, c.bfdProfiles}
	if c.l2ads != nil {
		cfgInformers = append(cfgInformers, c.l2ads)
	}
	for _, inf := range cfgInformers {
		_, _ = inf.AddEventHandler(cfgChanged)
	}
	// This node's changes recompile the configuration; any node's change
	// recomputes layer 2 mode's announcements only.
	nodeEvent := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if n, ok := obj.(*corev1.Node); !ok || n.Name == o.NodeName {
			c.q.configChanged()
		}
		if o.L2 != nil {
			c.q.nodesChanged()
		}
	}
	_, _ = c.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: nodeEvent, DeleteFunc: nodeEvent,
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if !ok1 || !ok2 || nodeChanged(o, n) {
				nodeEvent(cur)
			}
		},
	})
	c.informers = append([]cache.SharedIndexInformer{c.services, c.slices, c.nodes}, cfgInformers...)
	return c
}

// Run starts the informers, waits for their caches and processes events until ctx
// ends.
func (c *Controller) Run(ctx context.Context) error {
	for _, inf := range c.informers {
		go inf.RunWithContext(ctx)
	}
	syncs := make([]cache.InformerSynced, 0, len(c.informers))
	for _, inf := range c.informers {
		syncs = append(syncs, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), syncs...) {
		return errors.New("informer caches did not sync")
	}
	c.log.Info("caches synced", "node", c.o.NodeName, "namespace", c.o.Namespace)
	c.q.configChanged()
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.q.signal:
		}
		keys, cfg, nodes := c.q.take()
		var sessions []announce.Session
		reconfigured := false
		if cfg {
			sessions, reconfigured = c.reconfigure()
		}
		l2all := false
		if c.o.L2 != nil && (reconfigured || nodes || first) {
			l2all = c.refreshL2()
		}
		if reconfigured {
			keys = c.allKeys()
		}
		for _, k := range keys {
			c.sync(k)
		}
		if l2all && !reconfigured {
			// A Node changed: layer 2 announcements only.
			done := map[string]bool{}
			for _, k := range keys {
				done[k] = true
			}
			for _, k := range c.allKeys() {
				if !done[k] {
					c.syncL2(k, c.load(k))
				}
			}
		}
		if reconfigured {
			// Sessions change after the routes: a new session starts holding
			// every route wanted for it. GoBGP sends End-of-RIB right after
			// what it holds when a session comes up, and a graceful-restart
			// helper then flushes every route of ours it has not received.
			c.applySessions(sessions)
		}
		if first {
			first = false
			if c.o.OnFirstSync != nil {
				c.o.OnFirstSync()
			}
		}
	}
}

// allKeys returns the key of every Service known or announced (Services that
// vanished while the configuration was bad still need withdrawing), sorted.
func (c *Controller) allKeys() []string {
	keys := c.services.GetIndexer().ListKeys()
	c.mu.Lock()
	for k := range c.state {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for k := range c.l2state {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// reconfigure compiles the configuration; it returns true when a new plan is in
// force (and every Service must be recomputed), with the BGP sessions of the
// plan, which the caller applies once the Services are. Bad objects are left
// out one by one and reported; an object whose newest version is bad but an
// earlier version was accepted keeps that version while the speaker runs.
func (c *Controller) reconfigure() ([]announce.Session, bool) {
	c.m.updates.Inc()
	nodeObj, ok, _ := c.nodes.GetIndexer().GetByKey(c.o.NodeName)
	if !ok {
		c.m.updateErrors.Inc()
		c.log.Warn("own Node object not found; not announcing", "node", c.o.NodeName)
		return nil, false
	}
	node := NodeFrom(nodeObj.(*corev1.Node))
	objs := c.objects()
	cfg, plan, problems, kept := c.compile(objs, node)
	c.report(objs, problems, kept)
	if c.plan != nil && reflect.DeepEqual(c.lastCfg, &cfg) && reflect.DeepEqual(c.lastNode, &node) {
		return nil, false
	}
	c.plan, c.lastCfg, c.lastNode = plan, &cfg, &node
	sessions := plan.Sessions()
	names := make([]string, 0, len(sessions))
	for _, s := range sessions {
		names = append(names, s.Name)
	}
	ok, why := plan.Eligible()
	c.log.Info("configuration applied", "sessions", names, "announcing", ok, "reason", why, "rejectedObjects", len(problems))
	return sessions, true
}

// applySessions hands the plan's BGP sessions to the announcer and to BFD.
func (c *Controller) applySessions(sessions []announce.Session) {
	if err := c.o.Announcer.SetSessions(sessions); err != nil {
		c.log.Error("configuring BGP sessions", "err", err)
	}
	if c.o.OnSessions != nil {
		c.o.OnSessions(sessions)
	}
}

// objects snapshots the metallb.io objects from the informer caches.
func (c *Controller) objects() Objects {
	objs := Objects{Namespace: c.o.Namespace, Secret: func(ns, name string) *corev1.Secret {
		o, ok, _ := c.secrets.GetIndexer().GetByKey(ns + "/" + name)
		if !ok {
			return nil
		}
		return o.(*corev1.Secret)
	}}
	for _, o := range c.pools.GetStore().List() {
		objs.Pools = append(objs.Pools, o.(*v1beta1.IPAddressPool))
	}
	for _, o := range c.ads.GetStore().List() {
		objs.Advertisements = append(objs.Advertisements, o.(*v1beta1.BGPAdvertisement))
	}
	for _, o := range c.peers.GetStore().List() {
		objs.Peers = append(objs.Peers, o.(*v1beta2.BGPPeer))
	}
	for _, o := range c.communities.GetStore().List() {
		objs.Communities = append(objs.Communities, o.(*v1beta1.Community))
	}
	for _, o := range c.bfdProfiles.GetStore().List() {
		objs.BFDProfiles = append(objs.BFDProfiles, o.(*v1beta1.BFDProfile))
	}
	if c.l2ads != nil {
		for _, o := range c.l2ads.GetStore().List() {
			objs.L2 = append(objs.L2, o.(*v1beta1.L2Advertisement))
		}
	}
	sortByName(objs.Pools)
	sortByName(objs.Advertisements)
	sortByName(objs.Peers)
	sortByName(objs.Communities)
	sortByName(objs.BFDProfiles)
	sortByName(objs.L2)
	return objs
}

// compile builds the plan in force from objs: the newest version of every object,
// except that a rejected object with an accepted earlier version uses that version
// (kept lists those, when that version is still accepted). problems are about the
// newest versions.
func (c *Controller) compile(objs Objects, node announce.Node) (cfg announce.Config, plan *announce.Plan, problems []announce.Problem, kept map[objectKey]bool) {
	cfg, plan, problems = compileAll(objs, node)
	bad := map[objectKey]bool{}
	for _, p := range problems {
		bad[objectKey{p.Kind, p.Name}] = true
	}
	c.good.record(objs, cfg, bad)
	if len(bad) == 0 {
		return cfg, plan, nil, map[objectKey]bool{} // nothing to substitute: the plan stands
	}
	cfg, kept, still := c.good.substitute(objs, bad)
	plan, more := announce.Compile(cfg, node)
	for _, p := range append(still, more...) {
		k := objectKey{p.Kind, p.Name}
		delete(kept, k)
		if !bad[k] {
			// Fine on its own, rejected beside another object's previous version
			// (say, a pool overlapping an older pool's kept addresses).
			problems = append(problems, p)
			bad[k] = true
		}
	}
	return cfg, plan, problems, kept
}

// compileAll converts and compiles, returning the configuration, its plan and
// every problem.
func compileAll(objs Objects, node announce.Node) (announce.Config, *announce.Plan, []announce.Problem) {
	cfg, problems := ConfigFrom(objs)
	plan, more := announce.Compile(cfg, node)
	return cfg, plan, append(problems, more...)
}

// report publishes each rejected object once per distinct message (Event on the
// object, log line, gauge) and clears the gauge of objects that are fine again.
func (c *Controller) report(objs Objects, problems []announce.Problem, kept map[objectKey]bool) {
	now := map[objectKey]string{}
	for _, p := range problems {
		k := objectKey{p.Kind, p.Name}
		msg := p.Error()
		if kept[k] {
			msg += "; its previous valid version stays in use"
		} else {
			msg += "; the object is ignored"
		}
		now[k] = msg
		c.m.invalid.WithLabelValues(p.Kind, p.Name).Set(1)
		if c.reported[k] == msg {
			continue
		}
		c.m.configErrors.Inc()
		c.log.Error("invalid configuration object", "kind", p.Kind, "name", p.Name, "err", p.Err.Error(), "previousVersionKept", kept[k])
		if obj := objs.find(k); obj != nil {
			c.event(obj, corev1.EventTypeWarning, ReasonInvalidConfiguration, "%s", msg)
		}
	}
	for k := range c.reported {
		if _, ok := now[k]; !ok {
			c.m.invalid.DeleteLabelValues(k.kind, k.name)
			c.log.Info("configuration object accepted again", "kind", k.kind, "name", k.name)
		}
	}
	c.reported = now
	if c.o.OnConfigState != nil {
		lines := make([]string, 0, len(now))
		for _, msg := range now {
			lines = append(lines, msg)
		}
		slices.Sort(lines)
		c.o.OnConfigState(lines)
	}
	stale := 0.0
	if len(kept) > 0 {
		stale = 1
	}
	c.m.configStale.Set(stale)
	if len(problems) > 0 {
		c.m.updateErrors.Inc()
		c.m.mlbConfigStale.Set(1)
	} else {
		c.m.mlbConfigLoaded.Set(1)
		c.m.mlbConfigStale.Set(0)
	}
}

func sortByName[T metav1.Object](l []T) {
	sort.Slice(l, func(i, j int) bool { return l[i].GetName() < l[j].GetName() })
}

// svcInput is one Service as the caches hold it, converted.
type svcInput struct {
	svc     *corev1.Service // nil: the Service does not exist
	foreign bool            // not a Service of this speaker's class
	eps     []*Slice
	as      announce.Service // set for an existing Service of this class
}

// load reads one Service and its EndpointSlices from the caches.
func (c *Controller) load(key string) svcInput {
	var in svcInput
	obj, exists, _ := c.services.GetIndexer().GetByKey(key)
	if !exists {
		return in
	}
	in.svc = obj.(*Svc).Service()
	in.foreign = !validation.HandlesService(in.svc, c.o.LoadBalancerClass)
	if in.foreign {
		return in
	}
	for _, k := range c.bySvc.get(key) {
		if o, ok, _ := c.slices.GetStore().GetByKey(k); ok {
			in.eps = append(in.eps, o.(*Slice))
		}
	}
	in.as = ServiceFrom(in.svc, in.eps, c.o.NodeName)
	return in
}

// sync recomputes one Service and applies the difference: its BGP routes and
// its layer 2 announcement.
func (c *Controller) sync(key string) {
	if c.plan == nil {
		return
	}
	in := c.load(key)
	c.syncBGP(key, in)
	c.syncL2(key, in)
}

// syncBGP recomputes one Service's routes and applies the difference.
func (c *Controller) syncBGP(key string, in svcInput) {
	start := time.Now()
	c.m.updates.Inc()
	var routes []announce.Route
	svc, as, foreign := in.svc, in.as, in.foreign
	if svc != nil && !foreign {
		var err error
		routes, err = c.plan.Routes(as)
		if err != nil {
			c.m.announceErrors.Inc()
			c.m.updateErrors.Inc()
			c.log.Error("service routes rejected; keeping what was announced", "service", key, "err", err)
			c.event(svc, corev1.EventTypeWarning, "AnnounceFailed", "keeping the previous announcement: %v", err)
			return
		}
	}
	if err := c.o.Announcer.Apply(key, routes); err != nil {
		c.m.announceErrors.Inc()
		c.m.updateErrors.Inc()
		c.log.Error("announcing service", "service", key, "err", err)
		if svc != nil {
			c.event(svc, corev1.EventTypeWarning, "AnnounceFailed", "%v", err)
		}
		return
	}
	var ips []netip.Addr
	if len(routes) > 0 {
		ips = as.IPs
	}
	digest := routesDigest(routes)
	c.mu.Lock()
	old, had := c.state[key]
	if len(routes) == 0 {
		delete(c.state, key)
	} else {
		c.state[key] = digest
	}
	if len(ips) == 0 {
		delete(c.ips, key)
	} else {
		c.ips[key] = ips
	}
	c.mu.Unlock()
	c.m.syncSeconds.Observe(time.Since(start).Seconds())
	has := len(routes) > 0
	if had == has && old == digest {
		return
	}
	switch {
	case !had && has:
		c.m.announced.Inc()
		c.log.Debug("announcing service", "service", key, "routes", len(routes))
		if svc != nil {
			c.event(svc, corev1.EventTypeNormal, "Announced", "announcing %s from node %s via BGP to %v",
				prefixList(routes), c.o.NodeName, peerList(routes))
		}
	case had && !has:
		c.m.announced.Dec()
		c.log.Debug("withdrawing service", "service", key)
		if svc != nil {
			why := c.plan.NotAnnouncedReason(as)
			if foreign {
				why = "it is not a LoadBalancer Service of this speaker's class"
			}
			if why == "" {
				why = "no BGPAdvertisement covers its address for this node"
			}
			c.event(svc, corev1.EventTypeNormal, "Withdrawn", "node %s no longer announces it: %s", c.o.NodeName, why)
		}
	}
	if c.o.Status != nil {
		c.o.Status.Changed(key)
	}
}

// ServiceStatus is the status.Source for this node.
func (c *Controller) ServiceStatus(key string) (status.Status, bool) {
	c.mu.Lock()
	_, announced := c.state[key]
	c.mu.Unlock()
	if !announced {
		return status.Status{}, false
	}
	routes := c.o.Announcer.ServiceRoutes(key)
	if len(routes) == 0 {
		return status.Status{}, false
	}
	return status.Status{Peers: peerList(routes), Prefixes: prefixList(routes),
		EstablishedPeers: c.o.Announcer.ServicePeers(key)}, true
}

// routesDigest is a 64-bit FNV-1a hash of routes, in order.
func routesDigest(routes []announce.Route) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, r := range routes {
		h.Write([]byte(r.Peer))
		h.Write([]byte{0})
		pb, _ := r.Prefix.MarshalBinary()
		h.Write(pb)
		binary.BigEndian.PutUint32(b[:], r.LocalPref)
		h.Write(b[:])
		for _, c := range r.Communities {
			if c.Large {
				h.Write([]byte{1})
				for _, v := range []uint32{c.Global, c.Local1, c.Local2} {
					binary.BigEndian.PutUint32(b[:], v)
					h.Write(b[:])
				}
				continue
			}
			binary.BigEndian.PutUint32(b[:], c.Value)
			h.Write(append([]byte{0}, b[:]...))
		}
		h.Write([]byte{0xff})
	}
	return h.Sum64()
}

func prefixList(routes []announce.Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, r.Prefix.String())
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func peerList(routes []announce.Route) []string {
	var out []string
	for _, r := range routes {
		out = append(out, r.Peer)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func (c *Controller) event(obj runtime.Object, typ, reason, format string, args ...any) {
	if c.o.Recorder != nil {
		c.o.Recorder.Eventf(obj, typ, reason, format, args...)
	}
}

// ServiceEvent records a Normal Event on the Service of key as cached, so
// the Event carries its UID (kubectl describe lists Events by UID). It
// records nothing for a Service no longer in the cache: its Events would
// show on no object.
func (c *Controller) ServiceEvent(key, reason, msg string) {
	obj, exists, _ := c.services.GetIndexer().GetByKey(key)
	if !exists {
		return
	}
	c.event(obj.(*Svc).Service(), corev1.EventTypeNormal, reason, "%s", msg)
}

// EventRecorder takes Events about objects (internal/events in the speaker).
type EventRecorder interface {
	Eventf(obj runtime.Object, typ, reason, format string, args ...any)
}

// String is for logs.
func (c *Controller) String() string { return fmt.Sprintf("speaker(%s)", c.o.NodeName) }

// ReasonInvalidConfiguration is the reason of the Warning Event on a metallb.io
// object this speaker rejects.
const ReasonInvalidConfiguration = "InvalidConfiguration"

type controllerMetrics struct {
	invalid        *prometheus.GaugeVec
	configErrors   prometheus.Counter
	configStale    prometheus.Gauge
	announceErrors prometheus.Counter
	announced      prometheus.Gauge
	syncSeconds    prometheus.Histogram

	// MetalLB's names (its internal/k8s/controllers/stats.go and
	// speaker/main.go), so its dashboards and alerts see the speaker.
	updates, updateErrors           prometheus.Counter
	mlbConfigLoaded, mlbConfigStale prometheus.Gauge
}

func newControllerMetrics(reg prometheus.Registerer, c *Controller) *controllerMetrics {
	m := &controllerMetrics{
		invalid: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "invalid_object", Help: "1 for each metallb.io object this speaker rejects (the series disappears once it is fixed)."},
			[]string{"kind", "name"}),
		configErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "config_errors_total", Help: "Rejections of metallb.io objects reported (once per object and message)."}),
		configStale: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "config_stale", Help: "1 while some object's newest version is rejected and its previous valid version is in force."}),
		announceErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "announce_errors_total", Help: "Service recomputations that kept the previous routes because of an error."}),
		announced: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "services_announced", Help: "Services this node announces."}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ecmplb", Subsystem: "speaker",
			Name: "service_sync_seconds", Help: "Time to recompute and apply one Service.",
			Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}),
	}
	m.updates = prometheus.NewCounter(prometheus.CounterOpts{Name: "metallb_k8s_client_updates_total",
		Help: "Number of Kubernetes object updates processed (configuration recompiles and Service syncs)."})
	m.updateErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "metallb_k8s_client_update_errors_total",
		Help: "Number of Kubernetes object updates that failed or were rejected."})
	m.mlbConfigLoaded = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metallb_k8s_client_config_loaded_bool",
		Help: "1 once the configuration loaded with no object rejected."})
	m.mlbConfigStale = prometheus.NewGauge(prometheus.GaugeOpts{Name: "metallb_k8s_client_config_stale_bool",
		Help: "1 while some object of the newest configuration is rejected (ignored, or its previous version kept)."})
	if reg != nil {
		reg.MustRegister(m.invalid, m.configErrors, m.configStale, m.announceErrors, m.announced, m.syncSeconds,
			m.updates, m.updateErrors, m.mlbConfigLoaded, m.mlbConfigStale, announcedCollector{c})
	}
	return m
}

// announcedDesc is MetalLB's metallb_speaker_announced.
var announcedDesc = prometheus.NewDesc("metallb_speaker_announced",
	"Services being announced from this node (1 per Service IP). This is desired state: the routers may not have converged yet.",
	[]string{"service", "protocol", "node", "ip"}, nil)

// announcedCollector serves metallb_speaker_announced from the addresses the
// controller announces, at each scrape: it holds no series of its own (a
// GaugeVec would keep one per Service IP, about 0.5 KB each).
type announcedCollector struct{ c *Controller }

func (a announcedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- announcedDesc }

func (a announcedCollector) Collect(ch chan<- prometheus.Metric) {
	type svcIPs struct {
		key string
		ips []netip.Addr
	}
	a.c.mu.Lock()
	all := make([]svcIPs, 0, len(a.c.ips))
	for k, ips := range a.c.ips {
		all = append(all, svcIPs{k, ips})
	}
	a.c.mu.Unlock()
	for _, s := range all {
		for _, ip := range s.ips {
			ch <- prometheus.MustNewConstMetric(announcedDesc, prometheus.GaugeValue, 1, s.key, "bgp", a.c.o.NodeName, ip.String())
		}
	}
}
