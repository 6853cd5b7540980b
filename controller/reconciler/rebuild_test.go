package reconciler

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/allocator"
)

// world is the API server's state: pools and Services with their status.
type world struct {
	pools    map[string]*v1beta1.IPAddressPool
	services map[string]*corev1.Service
}

func newWorld() *world {
	return &world{pools: map[string]*v1beta1.IPAddressPool{}, services: map[string]*corev1.Service{}}
}

func (w *world) poolList() []v1beta1.IPAddressPool {
	var out []v1beta1.IPAddressPool
	for _, p := range w.pools {
		out = append(out, *p)
	}
	return out
}

// step changes the world at a time (seconds); the running controller sees it
// at once.
type step struct {
	at  int64
	do  func(w *world, at metav1.Time)
	txt string
}

func setPool(name string, created int64, addrs ...string) step {
	return step{at: created, txt: "pool " + name, do: func(w *world, at metav1.Time) {
		p := w.pools[name]
		if p == nil {
			p = &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: name, CreationTimestamp: metav1.Unix(created, 0)}}
			w.pools[name] = p
		}
		p.Spec = v1beta1.IPAddressPoolSpec{Addresses: addrs, AutoAssign: ptr(false)}
	}}
}

func editPool(at int64, name string, addrs ...string) step {
	return step{at: at, txt: "edit pool " + name, do: func(w *world, _ metav1.Time) { w.pools[name].Spec.Addresses = addrs }}
}

// setService creates or changes a Service (a user's write: it is recorded in
// managedFields with the time, as the API server does).
func setService(at int64, name string, mut func(*corev1.Service)) step {
	return step{at: at, txt: "service " + name, do: func(w *world, t metav1.Time) {
		s := w.services[name]
		if s == nil {
			s = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, CreationTimestamp: t, Annotations: map[string]string{}},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "x"}}}
			w.services[name] = s
		}
		mut(s)
		s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, Time: &t},
			{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, Time: ptr(metav1.Unix(t.Unix()+1000, 0))},
			{Manager: FieldManager, Subresource: "status", Time: ptr(metav1.Unix(t.Unix()+1000, 0))}}
	}}
}

func shared(pool string, port int32) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Annotations[v1beta1.AnnotationAddressPool] = pool
		s.Annotations[v1beta1.AnnotationAllowSharedIP] = "k"
		s.Spec.Ports = []corev1.ServicePort{{Port: port, Protocol: corev1.ProtocolTCP}}
	}
}

// core is the allocation logic of a Controller without its API calls:
// apply the pool verdict, reconcile Services, write status into the world.
type core struct{ alloc *allocator.Allocator }

func (c *core) syncPools(t *testing.T, w *world) {
	accepted, _ := DecidePools(w.poolList())
	if _, err := c.alloc.SetPools(accepted); err != nil {
		t.Fatal(err)
	}
}

func (c *core) reconcile(t *testing.T, w *world, name string) {
	s := w.services[name]
	r, err := RequestFor(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	as, _, _ := c.alloc.Assign(r)
	s.Status.LoadBalancer.Ingress = nil
	for _, ip := range as.IPs {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip.String()})
	}
}

// rebuild is Controller.rebuild over the world, then one reconcile per
// Service (in the given order), as after a restart.
func rebuilt(t *testing.T, w *world, order []string) *core {
	c := &core{alloc: allocator.New()}
	c.syncPools(t, w)
	// As the cache holds them.
	var svcs []*Svc
	for _, s := range w.services {
		svcs = append(svcs, Compact(s))
	}
	restore(c.alloc, svcs, func(string, []netip.Addr, error) {})
	for _, name := range order {
		c.reconcile(t, w, name)
	}
	return c
}

// outcome renders every Service's allocation and the accepted pools.
func outcome(c *core, w *world) string {
	var out []string
	for name := range w.services {
		as, _ := c.alloc.Lookup("ns/" + name)
		out = append(out, fmt.Sprintf("%s=%v", name, as.IPs))
	}
	slices.Sort(out)
	return strings.Join(out, " ") + " pools=" + fmt.Sprint(c.alloc.Pools())
}

// TestRestartDecidesAsRunning runs each sequence twice: with the controller
// running throughout, and with the controller down for the last steps and
// rebuilt from the API server's state afterwards. Both must end the same.
func TestRestartDecidesAsRunning(t *testing.T) {
	tests := []struct {
		name string
		// before runs with the controller up; while runs with it down.
		before, while []step
		want          string
	}{
		{
			// Issue #8 (12): s-old, the older Service, changes its port to one
			// s-new uses on their shared IP. Running, s-old's change moves s-old.
			name: "sharing conflict appears while down",
			before: []step{setPool("p", 1, "10.0.0.0/30"),
				setService(10, "s-old", shared("p", 80)), setService(20, "s-new", shared("p", 443))},
			while: []step{setService(30, "s-old", shared("p", 443))},
			want:  "s-new=[10.0.0.0] s-old=[10.0.0.1] pools=[p]",
		},
		{
			// Issue #8 (12): a bad edit rejects the pool in both cases; its
			// allocations stay, nothing new comes from it.
			name: "pool edited to invalid",
			before: []step{setPool("p", 1, "10.0.0.0/30"), setService(10, "e1", shared("p", 80)),
				editPool(20, "p", "10.0.0.0/33"), setService(30, "e2", shared("p", 443))},
			while: []step{setService(40, "e3", shared("p", 8080))},
			want:  "e1=[10.0.0.0] e2=[] e3=[] pools=[]",
		},
		{
			// Issue #8 (7): the older pool wins the overlap although the younger
			// one was accepted first (the older was invalid then).
			name: "overlap decided by age, not arrival",
			before: []step{setPool("older", 1, "10.0.0.0/33"), setPool("younger", 2, "10.0.0.0/31"),
				setService(10, "y1", shared("younger", 80))},
			while: []step{editPool(20, "older", "10.0.0.0/30")},
			want:  "y1=[10.0.0.0] pools=[older]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Running throughout.
			w := newWorld()
			run := &core{alloc: allocator.New()}
			apply := func(c *core, s step) {
				s.do(w, metav1.Unix(s.at, 0))
				if c == nil {
					return
				}
				c.syncPools(t, w)
				for name := range w.services {
					c.reconcile(t, w, name)
				}
			}
			for _, s := range tt.before {
				apply(run, s)
			}
			snapshot := cloneWorld(w)
			for _, s := range tt.while {
				apply(run, s)
			}
			running := outcome(run, w)
			if running != tt.want {
				t.Errorf("running: %s\nwant     %s", running, tt.want)
			}

			// Down for the last steps, then rebuilt; reconcile order must not matter.
			for _, reverse := range []bool{false, true} {
				w2 := cloneWorld(snapshot)
				w = w2
				for _, s := range tt.while {
					apply(nil, s)
				}
				var order []string
				for name := range w.services {
					order = append(order, name)
				}
				slices.Sort(order)
				if reverse {
					slices.Reverse(order)
				}
				if got := outcome(rebuilt(t, w, order), w); got != running {
					t.Errorf("rebuilt (reconcile order %v): %s\nrunning:                 %s", order, got, running)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func cloneWorld(w *world) *world {
	out := newWorld()
	for k, p := range w.pools {
		out.pools[k] = p.DeepCopy()
	}
	for k, s := range w.services {
		out.services[k] = s.DeepCopy()
	}
	return out
}

func TestLastChange(t *testing.T) {
	at := func(s int64) *metav1.Time { return ptr(metav1.Unix(s, 0)) }
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Unix(10, 0), ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Time: at(20)},
		{Manager: FieldManager, Time: at(50)},                                     // our own annotation
		{Manager: "kube-controller-manager", Subresource: "status", Time: at(60)}, // status
		{Manager: "helm"}, // no time
	}}}
	if got := LastChange(svc); !got.Equal(time.Unix(20, 0)) {
		t.Errorf("LastChange = %v, want the kubectl write at 20", got)
	}
	svc.ManagedFields = nil
	if got := LastChange(svc); !got.Equal(time.Unix(10, 0)) {
		t.Errorf("LastChange without managedFields = %v, want the creation time", got)
	}
}

func TestDecidePools(t *testing.T) {
	mk := func(name string, created int64, addrs ...string) v1beta1.IPAddressPool {
		return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: name, CreationTimestamp: metav1.Unix(created, 0)},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	}
	deleted := mk("gone", 0, "203.0.113.0/24")
	deleted.DeletionTimestamp = ptr(metav1.Unix(5, 0))
	accepted, rejected := DecidePools([]v1beta1.IPAddressPool{
		mk("a-new-pool", 20, "203.0.113.0/25"), mk("prod-pool", 10, "203.0.113.0/24"), mk("bad", 1, "10.0.0.0/33"),
		mk("other", 5, "198.51.100.0/24"), deleted,
	})
	var names []string
	for _, p := range accepted {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"other", "prod-pool"}) {
		t.Errorf("accepted %v, want [other prod-pool] (oldest first)", names)
	}
	want := map[string]string{
		"a-new-pool": `spec.addresses[0]: overlaps IPAddressPool "prod-pool" in 203.0.113.0-203.0.113.127`,
		"bad":        `spec.addresses[0]: "10.0.0.0/33" is not a valid CIDR or range`,
	}
	if len(rejected) != len(want) {
		t.Errorf("rejected %v", rejected)
	}
	for name, sub := range want {
		if e := rejected[name]; e == nil || !strings.Contains(e.Error(), sub) {
			t.Errorf("%s: %v, want %q", name, e, sub)
		}
	}
}

func TestCompactKeepsLastChange(t *testing.T) {
	at := func(s int64) *metav1.Time { return ptr(metav1.Unix(s, 0)) }
	for _, mf := range [][]metav1.ManagedFieldsEntry{
		nil,
		{{Manager: "kubectl", Time: at(20)}, {Manager: FieldManager, Time: at(50)}},
		{{Manager: "x", Subresource: "status", Time: at(60)}},
		{{Manager: "a", Time: at(30)}, {Manager: "b", Time: at(40)}, {Manager: "helm"}},
	} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Unix(10, 0), ManagedFields: mf}}
		want := LastChange(svc)
		got := Compact(svc).Service()
		if !LastChange(got).Equal(want) || len(got.ManagedFields) > 1 {
			t.Errorf("%v: LastChange %v after compaction (%d entries), want %v", mf, LastChange(got), len(got.ManagedFields), want)
		}
	}
}

func TestResourceVersionAtLeast(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"100", "99", true}, {"100", "100", true}, {"99", "100", false},
		{"1000", "999", true}, // numeric, not lexical
		{"", "1", false}, {"1", "", false}, {"abc", "1", false}, {"1", "x1", false},
	} {
		if got := ResourceVersionAtLeast(tt.a, tt.b); got != tt.want {
			t.Errorf("ResourceVersionAtLeast(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// BenchmarkRestore is the rebuild's restore of 11,000 cached Services, each
// holding an IP of one /16 pool (the controller bench's restart).
func BenchmarkRestore(b *testing.B) {
	const n = 11000
	svcs := make([]*Svc, n)
	for i := range svcs {
		svcs[i] = Compact(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("s-%05d", i), UID: "u",
				CreationTimestamp: metav1.Unix(int64(i), 0)},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
				{IP: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}).String()}}}},
		})
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		alloc := allocator.New()
		if _, err := alloc.SetPools([]allocator.PoolConfig{{Name: "p", Addresses: []string{"10.200.0.0/16"}, AutoAssign: true}}); err != nil {
			b.Fatal(err)
		}
		in := slices.Clone(svcs)
		b.StartTimer()
		if restored, conflicts := restore(alloc, in, func(string, []netip.Addr, error) {}); restored != n || conflicts != 0 {
			b.Fatalf("restored %d, %d conflicts", restored, conflicts)
		}
	}
}

// syncedInformer is a Service informer that has synced; its
// LastSyncResourceVersion is rv once set.
type syncedInformer struct {
	toolscache.SharedIndexInformer
	rv    atomic.Pointer[string]
	store toolscache.Store
}

func (i *syncedInformer) HasSynced() bool            { return true }
func (i *syncedInformer) GetStore() toolscache.Store { return i.store }
func (i *syncedInformer) LastSyncResourceVersion() string {
	if p := i.rv.Load(); p != nil {
		return *p
	}
	return ""
}

// informerCache hands out one informer.
type informerCache struct {
	cache.Cache
	inf *syncedInformer
}

func (c informerCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.inf, nil
}

// The reflector records the List's resourceVersion just after it hands the
// List to the informer's queue, and the queue may be through it (synced)
// first: the rebuild waits for the version rather than list every Service
// again. A version that does not come in time, or that is older than the
// Lease, still means a live List.
func TestCacheCoversLeaseWaitsForTheListVersion(t *testing.T) {
	inf := &syncedInformer{store: toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)}
	c := &Controller{cache: informerCache{inf: inf}}
	go func() {
		time.Sleep(20 * time.Millisecond) // the reflector, descheduled
		rv := "120"
		inf.rv.Store(&rv)
	}()
	if _, rv, ok := c.cacheCoversLease(context.Background(), "100"); !ok || rv != "120" {
		t.Fatalf("cache at %q trusted %v, want 120 trusted", rv, ok)
	}
	if _, _, ok := c.cacheCoversLease(context.Background(), "130"); ok {
		t.Fatal("a cache older than the Lease trusted")
	}
	never := &syncedInformer{store: inf.store}
	c = &Controller{cache: informerCache{inf: never}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, ok := c.cacheCoversLease(ctx, "100"); ok {
		t.Fatal("a cache with no List version trusted")
	}
}
