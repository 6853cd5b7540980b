package watch

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/validation"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// fakeAnnouncer records what the controller asks BGP to do.
type fakeAnnouncer struct {
	mu       sync.Mutex
	sessions []announce.Session
	routes   map[string][]announce.Route
	// started: for each session, the routes held for it (as "key prefix")
	// when SetSessions first named it.
	started map[string][]string
	applies int // calls of Apply
}

func (f *fakeAnnouncer) SetSessions(s []announce.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sess := range s {
		if f.started == nil {
			f.started = map[string][]string{}
		}
		if _, ok := f.started[sess.Name]; ok {
			continue
		}
		held := []string{}
		for key, routes := range f.routes {
			for _, r := range routes {
				if r.Peer == sess.Name {
					held = append(held, key+" "+r.Prefix.String())
				}
			}
		}
		slices.Sort(held)
		f.started[sess.Name] = held
	}
	f.sessions = slices.Clone(s)
	return nil
}

// heldAtStart returns the routes held for a session when it was first set.
func (f *fakeAnnouncer) heldAtStart(name string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.started[name]
	return r, ok
}

func (f *fakeAnnouncer) Apply(key string, routes []announce.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applies++
	if len(routes) == 0 {
		delete(f.routes, key)
	} else {
		f.routes[key] = slices.Clone(routes)
	}
	return nil
}

func (f *fakeAnnouncer) ServicePeers(string) []string { return nil }

func (f *fakeAnnouncer) ServiceRoutes(key string) []announce.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes[key])
}

func (f *fakeAnnouncer) sessionNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.sessions {
		out = append(out, s.Name)
	}
	return out
}

func (f *fakeAnnouncer) session(name string) (announce.Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.Name == name {
			return s, true
		}
	}
	return announce.Session{}, false
}

// announced renders a Service's routes as "peer prefix" strings.
func (f *fakeAnnouncer) announced(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.routes[key] {
		out = append(out, r.Peer+" "+r.Prefix.String())
	}
	return out
}

// event is one recorded Event.
type event struct {
	kind, name, typ, reason, msg string
	uid                          types.UID
}

// fakeRecorder records Events with the kind of the object they are on.
type fakeRecorder struct {
	mu     sync.Mutex
	events []event
}

func (r *fakeRecorder) Event(obj runtime.Object, typ, reason, msg string) {
	kind := reflect.TypeOf(obj).Elem().Name()
	name, uid := "", types.UID("")
	if m, ok := obj.(metav1.Object); ok {
		name, uid = m.GetName(), m.GetUID()
	}
	r.mu.Lock()
	r.events = append(r.events, event{kind, name, typ, reason, msg, uid})
	r.mu.Unlock()
}

func (r *fakeRecorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	r.Event(obj, typ, reason, fmt.Sprintf(format, args...))
}

func (r *fakeRecorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	r.Eventf(obj, typ, reason, format, args...)
}

func (r *fakeRecorder) find(kind, name, reason string) (event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.kind == kind && e.name == name && e.reason == reason {
			return e, true
		}
	}
	return event{}, false
}

const ns = "metallb-system"

// cluster is a fake API: a fake clientset for the core objects and one fake
// source per metallb.io resource.
type cluster struct {
	client  *fake.Clientset
	sources map[string]*fcache.FakeControllerSource
	// secretLists records the field selectors of Secret lists.
	secretLists []string
	mu          sync.Mutex
}

func newCluster(objs ...runtime.Object) *cluster {
	c := &cluster{sources: map[string]*fcache.FakeControllerSource{}}
	var core []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *v1beta1.IPAddressPool, *v1beta2.BGPPeer, *v1beta1.BGPAdvertisement, *v1beta1.Community, *v1beta1.BFDProfile,
			*v1beta1.L2Advertisement:
			c.source(o).Add(o)
		default:
			core = append(core, o)
		}
	}
	c.client = fake.NewClientset(core...)
	c.client.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.secretLists = append(c.secretLists, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		c.mu.Unlock()
		return false, nil, nil
	})
	return c
}

// kube serves Options.Kube from the fake clientset.
func (c *cluster) kube(resource, namespace string, tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	var list func(context.Context, metav1.ListOptions) (runtime.Object, error)
	var watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)
	core, disc := c.client.CoreV1(), c.client.DiscoveryV1()
	switch resource {
	case "services":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Services(namespace).List(ctx, o)
		}
		watchFn = core.Services(namespace).Watch
	case "nodes":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Nodes().List(ctx, o)
		}
		watchFn = core.Nodes().Watch
	case "secrets":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return core.Secrets(namespace).List(ctx, o)
		}
		watchFn = core.Secrets(namespace).Watch
	case "endpointslices":
		list = func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return disc.EndpointSlices(namespace).List(ctx, o)
		}
		watchFn = disc.EndpointSlices(namespace).Watch
	default:
		panic("kube: unexpected resource " + resource)
	}
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchFn(ctx, o)
		},
	}
}

func resourceOf(o runtime.Object) string {
	switch o.(type) {
	case *v1beta1.IPAddressPool:
		return "ipaddresspools"
	case *v1beta2.BGPPeer:
		return "bgppeers"
	case *v1beta1.BGPAdvertisement:
		return "bgpadvertisements"
	case *v1beta1.Community:
		return "communities"
	case *v1beta1.BFDProfile:
		return "bfdprofiles"
	case *v1beta1.L2Advertisement:
		return "l2advertisements"
	}
	panic(fmt.Sprintf("not a metallb.io object: %T", o))
}

func (c *cluster) source(o runtime.Object) *fcache.FakeControllerSource {
	return c.sourceFor(resourceOf(o))
}

func (c *cluster) sourceFor(resource string) *fcache.FakeControllerSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sources[resource]
	if s == nil {
		s = fcache.NewFakeControllerSource()
		c.sources[resource] = s
	}
	return s
}

// speaker is a running Controller on node n1 of a cluster.
type speaker struct {
	ctrl *Controller
	ann  *fakeAnnouncer
	rec  *fakeRecorder
	reg  *prometheus.Registry
}

func startSpeaker(t *testing.T, c *cluster, class string) *speaker {
	return startSpeakerWith(t, c, class, nil)
}

func startSpeakerWith(t *testing.T, c *cluster, class string, firstSync func(*speaker)) *speaker {
	t.Helper()
	return startSpeakerOpts(t, c, func(o *Options, sp *speaker) {
		o.LoadBalancerClass = class
		if firstSync != nil {
			o.OnFirstSync = func() { firstSync(sp) }
		}
	})
}

// startSpeakerOpts starts a speaker on n1 with options changed by mut.
func startSpeakerOpts(t *testing.T, c *cluster, mut func(*Options, *speaker)) *speaker {
	t.Helper()
	sp := &speaker{ann: &fakeAnnouncer{routes: map[string][]announce.Route{}}, rec: &fakeRecorder{}, reg: prometheus.NewRegistry()}
	o := Options{
		NodeName: "n1", Namespace: ns, Kube: c.kube, Announcer: sp.ann, Recorder: sp.rec, Registerer: sp.reg,
		ListWatch: func(resource string) cache.ListerWatcher { return c.sourceFor(resource) },
		Logger:    slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if mut != nil {
		mut(&o, sp)
	}
	ctrl := New(o)
	sp.ctrl = ctrl
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return sp
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// invalid returns the ecmplb_speaker_invalid_object series as "kind/name".
func (sp *speaker) invalid(t *testing.T) []string {
	mfs, err := sp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "ecmplb_speaker_invalid_object" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if m.GetGauge().GetValue() == 1 {
				out = append(out, l["kind"]+"/"+l["name"])
			}
		}
	}
	slices.Sort(out)
	return out
}

func eventually(t *testing.T, what string, cond func() (bool, any)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var last any
	for time.Now().Before(deadline) {
		ok, v := cond()
		if ok {
			return
		}
		last = v
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %v", what, last)
}

// Objects of the tests.

var created = metav1.Unix(1000, 0)

func node1() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"rack": "1"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.21"}}}}
}

func pool(name string, created metav1.Time, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: created},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peer(name, addr string, mut func(*v1beta2.BGPPeerSpec)) *v1beta2.BGPPeer {
	p := &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1beta2.BGPPeerSpec{MyASN: 65100, ASN: 65000, Address: addr}}
	if mut != nil {
		mut(&p.Spec)
	}
	return p
}

func advert(name string, mut func(*v1beta1.BGPAdvertisementSpec)) *v1beta1.BGPAdvertisement {
	a := &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func lbService(name, ip string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip}}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

func readySlice(svc string) *discoveryv1.EndpointSlice {
	n := "n1"
	return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, NodeName: &n}}}
}

func TestControllerAppliesConfigAndWithdraws(t *testing.T) {
	c := newCluster(node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil), advert("all", nil),
		lbService("web", "203.0.113.5", nil), readySlice("web"),
		lbService("db", "203.0.113.6", nil), readySlice("db"))
	sp := startSpeaker(t, c, "")
	eventually(t, "sessions and routes", func() (bool, any) {
		got := [][]string{sp.ann.sessionNames(), sp.ann.announced("default/web"), sp.ann.announced("default/db")}
		return reflect.DeepEqual(got, [][]string{{"tor1"}, {"tor1 203.0.113.5/32"}, {"tor1 203.0.113.6/32"}}), got
	})
	if _, ok := sp.rec.find("Service", "web", "Announced"); !ok {
		t.Error("no Announced Event on the Service")
	}
	if err := c.client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "withdrawal of the deleted Service", func() (bool, any) {
		got := sp.ann.announced("default/web")
		return len(got) == 0, got
	})
	if got := sp.ann.announced("default/db"); len(got) != 1 {
		t.Errorf("the other Service was touched: %v", got)
	}
	// Only password Secrets are watched.
	c.mu.Lock()
	lists := slices.Clone(c.secretLists)
	c.mu.Unlock()
	if len(lists) == 0 || lists[0] != "type="+validation.PasswordSecretType {
		t.Errorf("Secret lists used field selectors %q, want type=%s", lists, validation.PasswordSecretType)
	}
}

// ServiceEvent (layer 2 mode's Events) records on the cached Service, UID
// included, which kubectl describe needs to list the Event; a Service gone
// from the cache gets none.
func TestServiceEventCarriesUID(t *testing.T) {
	c := newCluster(node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil), advert("all", nil),
		lbService("web", "203.0.113.5", func(s *corev1.Service) { s.UID = "uid-web" }), readySlice("web"))
	sp := startSpeaker(t, c, "")
	eventually(t, "routes", func() (bool, any) {
		got := sp.ann.announced("default/web")
		return len(got) == 1, got
	})
	sp.ctrl.ServiceEvent("default/web", "nodeAssigned", `announcing from node "n1" with protocol "layer2"`)
	sp.ctrl.ServiceEvent("default/gone", "nodeAssigned", "x")
	ev, ok := sp.rec.find("Service", "web", "nodeAssigned")
	if !ok || ev.uid != "uid-web" || ev.typ != corev1.EventTypeNormal || ev.msg != `announcing from node "n1" with protocol "layer2"` {
		t.Fatalf("event %+v (found %v), want a Normal nodeAssigned Event on UID uid-web", ev, ok)
	}
	if ev, ok := sp.rec.find("Service", "gone", "nodeAssigned"); ok {
		t.Fatalf("event on a Service not in the cache: %+v", ev)
	}
}

// OnFirstSync comes once, after every Service was computed: the status writer
// waits for it so that its start-up cleanup sees the true announcements.
func TestControllerFirstSync(t *testing.T) {
	c := newCluster(node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil), advert("all", nil),
		lbService("web", "203.0.113.5", nil), readySlice("web"), lbService("db", "203.0.113.6", nil), readySlice("db"))
	type seen struct{ web, db []string }
	calls := make(chan seen, 2)
	sp := startSpeakerWith(t, c, "", func(sp *speaker) {
		calls <- seen{sp.ann.announced("default/web"), sp.ann.announced("default/db")}
	})
	select {
	case got := <-calls:
		if len(got.web) != 1 || len(got.db) != 1 {
			t.Errorf("first sync reported before every Service was computed: %+v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first sync")
	}
	if err := c.client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "withdrawal", func() (bool, any) { got := sp.ann.announced("default/web"); return len(got) == 0, got })
	select {
	case <-calls:
		t.Error("OnFirstSync called twice")
	default:
	}
}

// A BGP session starts only once every route wanted for it is held: with
// graceful restart the router keeps the previous speaker's routes, stale,
// until the new session's End-of-RIB, and GoBGP sends End-of-RIB right after
// the routes it holds when the session comes up. A session started before
// the Services were computed flushed their routes from the router (a
// rolling restart on kind withdrew node1 and announced it again). The same
// holds for a peer added while the speaker runs.
func TestSessionsStartAfterTheirRoutes(t *testing.T) {
	var objs []runtime.Object
	want := []string{}
	for i := range 50 {
		name := fmt.Sprintf("svc%02d", i)
		ip := fmt.Sprintf("203.0.113.%d", 10+i)
		objs = append(objs, lbService(name, ip, nil), readySlice(name))
		want = append(want, "default/"+name+" "+ip+"/32")
	}
	slices.Sort(want)
	c := newCluster(append(objs, node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil), advert("all", nil))...)
	sp := startSpeaker(t, c, "")
	eventually(t, "tor1's session", func() (bool, any) {
		got, ok := sp.ann.heldAtStart("tor1")
		return ok, got
	})
	if got, _ := sp.ann.heldAtStart("tor1"); !slices.Equal(got, want) {
		t.Errorf("tor1's session started holding %d of its %d routes: %v", len(got), len(want), got)
	}
	c.source(peer("tor2", "10.0.0.2", nil)).Add(peer("tor2", "10.0.0.2", nil))
	eventually(t, "tor2's session", func() (bool, any) {
		got, ok := sp.ann.heldAtStart("tor2")
		return ok, got
	})
	if got, _ := sp.ann.heldAtStart("tor2"); !slices.Equal(got, want) {
		t.Errorf("tor2's session started holding %d of its %d routes: %v", len(got), len(want), got)
	}
}

// badObjects are the examples, each next to good configuration.
func badObjects() []runtime.Object {
	return []runtime.Object{
		// Meant for another rack: never checked on n1.
		peer("rack2", "10.2.0.1", func(s *v1beta2.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{Duration: time.Second}
			s.PasswordSecret = corev1.SecretReference{Name: "missing"}
			s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "2"}}}
		}),
		peer("bad-hold", "10.0.0.3", func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: time.Second} }),
		peer("no-secret", "10.0.0.4", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "missing"} }),
		peer("no-bfd", "10.0.0.5", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }),
		pool("bad-pool", created, "10.0.0.0/33"),
		// Overlaps prod, is newer and sorts first (issue #8, 7).
		pool("a-new-pool", metav1.Unix(2000, 0), "203.0.113.0/25"),
		advert("bad-community", func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = []string{"65000:70000"} }),
		&v1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-alias"},
			Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{{Name: "gold", Value: "x"}}}},
	}
}

func TestControllerRejectsBadObjectsOneByOne(t *testing.T) {
	// Starting with bad objects is what a restarted speaker sees: the good ones
	// must announce at once.
	objs := append([]runtime.Object{node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil),
		advert("all", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"prod"} }),
		lbService("web", "203.0.113.5", nil), readySlice("web")}, badObjects()...)
	c := newCluster(objs...)
	sp := startSpeaker(t, c, "")
	eventually(t, "good configuration to apply", func() (bool, any) {
		got := [][]string{sp.ann.sessionNames(), sp.ann.announced("default/web")}
		return reflect.DeepEqual(got, [][]string{{"tor1"}, {"tor1 203.0.113.5/32"}}), got
	})
	want := []string{"BGPAdvertisement/bad-community", "BGPPeer/bad-hold", "BGPPeer/no-bfd", "BGPPeer/no-secret",
		"Community/bad-alias", "IPAddressPool/a-new-pool", "IPAddressPool/bad-pool"}
	eventually(t, "invalid_object gauges", func() (bool, any) {
		got := sp.invalid(t)
		return reflect.DeepEqual(got, want), got
	})
	for _, tc := range []struct{ kind, name, msg string }{
		{"BGPPeer", "bad-hold", `BGPPeer "bad-hold": spec.holdTime: 1s is below the BGP minimum of 3s; the object is ignored`},
		{"BGPPeer", "no-secret", `BGPPeer "no-secret": spec.passwordSecret: Secret metallb-system/missing of type kubernetes.io/basic-auth not found`},
		{"BGPPeer", "no-bfd", `spec.bfdProfile: BFDProfile "fast" does not exist`},
		{"IPAddressPool", "bad-pool", `IPAddressPool "bad-pool": spec.addresses[0]: "10.0.0.0/33" is not a valid CIDR or range`},
		{"IPAddressPool", "a-new-pool", `IPAddressPool "a-new-pool": spec.addresses[0]: overlaps IPAddressPool "prod" in 203.0.113.0-203.0.113.127`},
		{"BGPAdvertisement", "bad-community", `BGPAdvertisement "bad-community": spec.communities: community "65000:70000"`},
		{"Community", "bad-alias", `Community "bad-alias": spec.communities[0]: alias "gold"`},
	} {
		e, ok := sp.rec.find(tc.kind, tc.name, ReasonInvalidConfiguration)
		if !ok || e.typ != corev1.EventTypeWarning || !strings.Contains(e.msg, tc.msg) {
			t.Errorf("%s %s: Event %+v (found %v), want Warning %s containing %q", tc.kind, tc.name, e, ok, ReasonInvalidConfiguration, tc.msg)
		}
	}
	if _, ok := sp.rec.find("BGPPeer", "rack2", ReasonInvalidConfiguration); ok {
		t.Error("a peer for another rack was reported on this node")
	}

	// Fixing an object clears its gauge and lets it apply.
	fixed := peer("bad-hold", "10.0.0.3", func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 9 * time.Second} })
	c.source(fixed).Modify(fixed)
	eventually(t, "the fixed peer to apply", func() (bool, any) {
		got := sp.ann.sessionNames()
		return reflect.DeepEqual(got, []string{"bad-hold", "tor1"}), got
	})
	eventually(t, "its gauge to go", func() (bool, any) {
		got := sp.invalid(t)
		return !slices.Contains(got, "BGPPeer/bad-hold"), got
	})
}

func TestControllerKeepsLastGoodVersionWhileRunning(t *testing.T) {
	objs := []runtime.Object{node1(), pool("prod", created, "203.0.113.0/24"),
		peer("tor1", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 9 * time.Second} }),
		peer("tor2", "10.0.0.2", nil), advert("all", nil), lbService("web", "203.0.113.5", nil), readySlice("web")}
	c := newCluster(objs...)
	sp := startSpeaker(t, c, "")
	eventually(t, "both sessions", func() (bool, any) {
		got := sp.ann.sessionNames()
		return reflect.DeepEqual(got, []string{"tor1", "tor2"}), got
	})
	bad := peer("tor1", "10.0.0.1", func(s *v1beta2.BGPPeerSpec) {
		s.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
		s.KeepaliveTime = &metav1.Duration{Duration: 9 * time.Second}
	})
	c.source(bad).Modify(bad)
	eventually(t, "the bad edit to be reported", func() (bool, any) {
		e, ok := sp.rec.find("BGPPeer", "tor1", ReasonInvalidConfiguration)
		return ok && strings.Contains(e.msg, "spec.keepaliveTime: 9s must be lower than holdTime 9s; its previous valid version stays in use"), e
	})
	if s, ok := sp.ann.session("tor1"); !ok || s.HoldTime != 9*time.Second || s.KeepaliveTime != 3*time.Second {
		t.Errorf("tor1 session %+v (present %v), want the previous version", s, ok)
	}
	if got := sp.ann.announced("default/web"); len(got) != 2 {
		t.Errorf("routes %v, want both peers", got)
	}

	// A restarted speaker never saw the good version: tor1 is rejected, the rest
	// announces.
	sp2 := startSpeaker(t, c, "")
	eventually(t, "restart: good objects announce", func() (bool, any) {
		got := [][]string{sp2.ann.sessionNames(), sp2.ann.announced("default/web")}
		return reflect.DeepEqual(got, [][]string{{"tor2"}, {"tor2 203.0.113.5/32"}}), got
	})
	if e, ok := sp2.rec.find("BGPPeer", "tor1", ReasonInvalidConfiguration); !ok || !strings.Contains(e.msg, "the object is ignored") {
		t.Errorf("restart: Event %+v (found %v)", e, ok)
	}
}

func TestControllerLoadBalancerClass(t *testing.T) {
	other := "other.example/lb"
	withClass := func(s *corev1.Service) { s.Spec.LoadBalancerClass = &other }
	objs := []runtime.Object{node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil), advert("all", nil),
		lbService("mine", "203.0.113.5", nil), readySlice("mine"),
		lbService("theirs", "203.0.113.6", withClass), readySlice("theirs")}
	for _, tc := range []struct {
		class      string
		want, not  string
		classifier string
	}{
		{"", "default/mine", "default/theirs", "no class"},
		{other, "default/theirs", "default/mine", other},
	} {
		t.Run(tc.classifier, func(t *testing.T) {
			sp := startSpeaker(t, newCluster(objs...), tc.class)
			eventually(t, "the Service of our class", func() (bool, any) {
				got := sp.ann.announced(tc.want)
				return len(got) == 1, got
			})
			if got := sp.ann.announced(tc.not); len(got) != 0 {
				t.Errorf("announced %s of another class: %v", tc.not, got)
			}
		})
	}

	// A Service that moves to another class is withdrawn.
	c := newCluster(objs...)
	sp := startSpeaker(t, c, "")
	eventually(t, "mine announced", func() (bool, any) {
		got := sp.ann.announced("default/mine")
		return len(got) == 1, got
	})
	moved := lbService("mine", "203.0.113.5", withClass)
	moved.ResourceVersion = "2"
	if _, err := c.client.CoreV1().Services("default").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mine withdrawn", func() (bool, any) {
		got := sp.ann.announced("default/mine")
		return len(got) == 0, got
	})
	if e, ok := sp.rec.find("Service", "mine", "Withdrawn"); !ok || !strings.Contains(e.msg, "class") {
		t.Errorf("Withdrawn Event %+v (found %v)", e, ok)
	}
}

func TestControllerReportsObjectsRejectedBesideAKeptVersion(t *testing.T) {
	c := newCluster(node1(), pool("p", created, "203.0.113.0/25"), pool("q", metav1.Unix(2000, 0), "198.51.100.0/24"),
		peer("tor1", "10.0.0.1", nil), advert("all", nil), lbService("web", "203.0.113.5", nil), readySlice("web"))
	sp := startSpeaker(t, c, "")
	eventually(t, "web announced", func() (bool, any) {
		got := sp.ann.announced("default/web")
		return len(got) == 1, got
	})
	// p's edit is bad, so its previous addresses stay; q then moves onto them.
	badP := pool("p", created, "203.0.113.0/33")
	c.source(badP).Modify(badP)
	movedQ := pool("q", metav1.Unix(2000, 0), "203.0.113.0/24")
	c.source(movedQ).Modify(movedQ)
	eventually(t, "both reported", func() (bool, any) {
		got := sp.invalid(t)
		return reflect.DeepEqual(got, []string{"IPAddressPool/p", "IPAddressPool/q"}), got
	})
	if e, ok := sp.rec.find("IPAddressPool", "q", ReasonInvalidConfiguration); !ok || !strings.Contains(e.msg, `overlaps IPAddressPool "p"`) {
		t.Errorf("q: Event %+v (found %v)", e, ok)
	}
	if got := sp.ann.announced("default/web"); len(got) != 1 {
		t.Errorf("web: %v, want it still announced from p's previous version", got)
	}
}

// The controller keeps only a digest of each Service's routes; any change of
// peer, prefix, local-pref, community (standard or large) or order is a change.
func TestRoutesDigestTellsEveryChange(t *testing.T) {
	base := []announce.Route{
		{Peer: "tor1", Prefix: netip.MustParsePrefix("203.0.113.5/32"), LocalPref: 100,
			Communities: []announce.Community{{Value: 65000<<16 | 1}, {Large: true, Global: 1, Local1: 2, Local2: 3}}},
		{Peer: "tor2", Prefix: netip.MustParsePrefix("203.0.113.5/32")},
	}
	clone := func() []announce.Route {
		out := slices.Clone(base)
		for i := range out {
			out[i].Communities = slices.Clone(out[i].Communities)
		}
		return out
	}
	if routesDigest(clone()) != routesDigest(base) {
		t.Fatal("equal routes, different digests")
	}
	changes := map[string]func(r []announce.Route) []announce.Route{
		"peer": func(r []announce.Route) []announce.Route { r[1].Peer = "tor3"; return r },
		"prefix": func(r []announce.Route) []announce.Route {
			r[1].Prefix = netip.MustParsePrefix("203.0.113.6/32")
			return r
		},
		"prefix length": func(r []announce.Route) []announce.Route {
			r[1].Prefix = netip.MustParsePrefix("203.0.113.0/24")
			return r
		},
		"local-pref":      func(r []announce.Route) []announce.Route { r[0].LocalPref = 200; return r },
		"community":       func(r []announce.Route) []announce.Route { r[0].Communities[0].Value++; return r },
		"large community": func(r []announce.Route) []announce.Route { r[0].Communities[1].Local2++; return r },
		"community kind": func(r []announce.Route) []announce.Route {
			r[0].Communities = r[0].Communities[:1]
			r[0].Communities[0].Large = true
			return r
		},
		"one community less": func(r []announce.Route) []announce.Route { r[0].Communities = r[0].Communities[:1]; return r },
		"a route less":       func(r []announce.Route) []announce.Route { return r[:1] },
		"order":              func(r []announce.Route) []announce.Route { r[0], r[1] = r[1], r[0]; return r },
		"communities moved": func(r []announce.Route) []announce.Route {
			r[1].Communities, r[0].Communities = r[0].Communities, nil
			return r
		},
	}
	for name, change := range changes {
		if routesDigest(change(clone())) == routesDigest(base) {
			t.Errorf("%s: the digest did not change", name)
		}
	}
}
