package status

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

func TestObjectNameIsValidAndReadable(t *testing.T) {
	long := func(s string, n int) string { return strings.Repeat(s, n)[:n] }
	cases := []struct {
		name, node, key string
		readable        string // the name starts with this
	}{
		{"short", "node1", "default/web", "node1-default-web-"},
		{"dotted node", "worker-1.rack-2.example.com", "prod/api", "worker-1.rack-2.example.com-prod-api-"},
		{"upper case node", "Node1", "ns/x", "node1-ns-x-"},
		{"longest parts", long("n.", 253), long("s", 63) + "/" + long("v", 63), "n.n.n."},
		{"long node ending at a dot", long("abc.", 240) + "d", "a/b", "abc.abc."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := ObjectName(tc.node, tc.key)
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				t.Errorf("ObjectName(%q, %q) = %q: not a valid object name: %v", tc.node, tc.key, n, errs)
			}
			if !strings.HasPrefix(n, tc.readable) {
				t.Errorf("ObjectName(%q, %q) = %q, want it to start with %q", tc.node, tc.key, n, tc.readable)
			}
			if n != ObjectName(tc.node, tc.key) {
				t.Errorf("ObjectName(%q, %q) is not deterministic", tc.node, tc.key)
			}
		})
	}
}

// Distinct (node, namespace, name) tuples get distinct names, also when the
// readable parts joined with "-" are the same.
func TestObjectNameIsInjective(t *testing.T) {
	type tuple struct{ node, key string }
	pairs := [][2]tuple{
		{{"a", "b-c/d"}, {"a-b", "c/d"}},
		{{"a", "b/c-d"}, {"a", "b-c/d"}},
		{{"a-b-c", "d/e"}, {"a", "b-c-d/e"}},
		{{"node1", "default/web"}, {"node2", "default/web"}},
		{{"node1", "default/web"}, {"node1", "default/web2"}},
		{{strings.Repeat("n", 250), "ns/" + strings.Repeat("x", 60) + "1"}, {strings.Repeat("n", 250), "ns/" + strings.Repeat("x", 60) + "2"}},
	}
	for _, p := range pairs {
		a, b := ObjectName(p[0].node, p[0].key), ObjectName(p[1].node, p[1].key)
		if a == b {
			t.Errorf("node %q service %q and node %q service %q share the name %q", p[0].node, p[0].key, p[1].node, p[1].key, a)
		}
	}
}

// startWriter runs a writer until the test ends.
func startWriter(t *testing.T, w *K8s) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("writer did not stop")
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// holds reports whether the API holds the wanted status for key of node.
func holds(f *fakeAPI, node, key string, want Status) bool {
	o, ok := f.get(ObjectName(node, key))
	if !ok {
		return false
	}
	ns, name, _ := strings.Cut(key, "/")
	s := o.Status
	return s.Node == node && s.ServiceNamespace == ns && s.ServiceName == name &&
		slices.Equal(s.Peers, want.Peers) && slices.Equal(s.Prefixes, want.Prefixes) &&
		slices.Equal(s.EstablishedPeers, want.EstablishedPeers) &&
		o.Labels[v1beta1.LabelNode] == node
}

var webStatus = Status{Peers: []string{"tor1", "tor2"}, Prefixes: []string{"203.0.113.5/32"}, EstablishedPeers: []string{"tor1"}}

// A write that fails is retried until the API server holds what the source
// says, with ecmplb's CRD (no status subresource) and with MetalLB's (one).
func TestFailedWritesAreRetried(t *testing.T) {
	cases := []struct {
		name string
		sub  bool
		fail func(f *fakeAPI)
	}{
		{"create fails", false, func(f *fakeAPI) { f.fail("POST", 3) }},
		{"every call fails", false, func(f *fakeAPI) { f.failAny(6) }},
		{"MetalLB's CRD: status patch fails after a create", true, func(f *fakeAPI) { f.fail("PATCH status", 3) }},
		{"MetalLB's CRD: create fails", true, func(f *fakeAPI) { f.fail("POST", 3) }},
		{"MetalLB's CRD: create and patch fail", true, func(f *fakeAPI) { f.fail("POST", 2); f.fail("PATCH status", 2) }},
		{"MetalLB's CRD: every call fails", true, func(f *fakeAPI) { f.failAny(6) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newFakeAPI(t, "metallb-system")
			f.setSubresource(tc.sub)
			var src source
			src.set("default/web", webStatus)
			tc.fail(f)
			w := newTestWriter(c, "node1", &src)
			startWriter(t, w)
			w.Changed("default/web")
			eventually(t, "the status is written", func() bool { return holds(f, "node1", "default/web", webStatus) })
		})
	}
}

// A change after a failed write is not lost either: the writer converges to
// the latest status.
func TestRetryWritesTheLatestStatus(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	var src source
	src.set("default/web", webStatus)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)
	w.Changed("default/web")
	eventually(t, "the first status is written", func() bool { return holds(f, "node1", "default/web", webStatus) })

	f.fail("PATCH", 4)
	next := Status{Peers: []string{"tor1", "tor2"}, Prefixes: []string{"203.0.113.5/32"}, EstablishedPeers: []string{"tor1", "tor2"}}
	src.set("default/web", next)
	w.ChangedAll()
	eventually(t, "the new status is written", func() bool { return holds(f, "node1", "default/web", next) })
}

// A delete that fails is retried until the object is gone.
func TestFailedDeletesAreRetried(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	var src source
	src.set("default/web", webStatus)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)
	w.Changed("default/web")
	eventually(t, "the status is written", func() bool { return holds(f, "node1", "default/web", webStatus) })

	f.fail("DELETE", 3)
	src.drop("default/web")
	w.Changed("default/web")
	eventually(t, "the object is deleted", func() bool { return len(f.names()) == 0 })
}

// The objects this node wrote in an earlier life and no longer announces are
// deleted at start-up, also when the first Lists fail; other nodes' objects
// stay.
func TestStartupCleanupIsRetried(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	stale := func(node, ns, name string) *v1beta1.ServiceBGPStatus {
		return &v1beta1.ServiceBGPStatus{
			ObjectMeta: metav1.ObjectMeta{Name: ObjectName(node, ns+"/"+name), Labels: map[string]string{
				v1beta1.LabelNode: node, v1beta1.LabelServiceNamespace: ns, v1beta1.LabelServiceName: name}},
			Status: v1beta1.ServiceBGPStatusStatus{Node: node, ServiceNamespace: ns, ServiceName: name, Peers: []string{"tor1"}},
		}
	}
	f.put(stale("node1", "default", "gone"))
	f.put(stale("node2", "default", "gone"))
	f.put(stale("node1", "default", "web"))
	f.fail("GET list", 3)
	var src source
	src.set("default/web", webStatus)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)

	eventually(t, "the stale object is deleted", func() bool {
		_, ok := f.get(ObjectName("node1", "default/gone"))
		return !ok
	})
	eventually(t, "the announced Service's status is written", func() bool { return holds(f, "node1", "default/web", webStatus) })
	if _, ok := f.get(ObjectName("node2", "default/gone")); !ok {
		t.Error("node2's object was deleted by node1's writer")
	}
	if n := f.count("GET list"); n < 4 {
		t.Errorf("%d Lists, want at least 4 (3 failed, then one that worked)", n)
	}
}

// Two nodes whose (node, Service) pairs join to the same string write two
// objects, and deleting one leaves the other.
func TestNoNameCollision(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	var srcA, srcAB source
	srcA.set("b-c/d", webStatus)
	other := Status{Peers: []string{"tor9"}, Prefixes: []string{"203.0.113.9/32"}}
	srcAB.set("c/d", other)
	wa := newTestWriter(c, "a", &srcA)
	wab := newTestWriter(c, "a-b", &srcAB)
	startWriter(t, wa)
	startWriter(t, wab)
	wa.Changed("b-c/d")
	wab.Changed("c/d")
	eventually(t, "both objects are written", func() bool {
		return holds(f, "a", "b-c/d", webStatus) && holds(f, "a-b", "c/d", other)
	})
	srcA.drop("b-c/d")
	wa.Changed("b-c/d")
	eventually(t, "node a's object is deleted", func() bool {
		_, ok := f.get(ObjectName("a", "b-c/d"))
		return !ok
	})
	// Give a wrong delete time to happen.
	time.Sleep(100 * time.Millisecond)
	if !holds(f, "a-b", "c/d", other) {
		t.Errorf("node a-b's object is gone or changed after node a deleted its own; objects: %v", f.names())
	}
}

// Every failed call is counted, by operation.
func TestFailuresAreCounted(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.setSubresource(true) // MetalLB's CRD: a create, then a status patch
	reg := prometheus.NewRegistry()
	var src source
	src.set("default/web", webStatus)
	f.fail("GET list", 2)
	f.fail("POST", 3)
	f.fail("PATCH status", 1)
	w := newTestWriter(c, "node1", &src, WithRegisterer(reg))
	startWriter(t, w)
	w.Changed("default/web")
	eventually(t, "the status is written", func() bool { return holds(f, "node1", "default/web", webStatus) })
	eventually(t, "the Lists are retried", func() bool { return f.count("GET list") >= 3 })
	want := map[string]float64{"list": 2, "create": 3, "update": 1, "delete": 0}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ecmplb_speaker_status_write_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("ecmplb_speaker_status_write_errors_total by operation = %v, want %v", got, want)
	}
}

// The writer converges what the API server holds, not what it believes it
// wrote: an object deleted or changed behind its back is repaired at the next
// resync.
func TestResyncRepairsObjectsChangedBehindItsBack(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	var src source
	src.set("default/web", webStatus)
	src.set("default/api", webStatus)
	w := newTestWriter(c, "node1", &src, WithResync(50*time.Millisecond))
	startWriter(t, w)
	w.Changed("default/web")
	w.Changed("default/api")
	eventually(t, "both are written", func() bool {
		return holds(f, "node1", "default/web", webStatus) && holds(f, "node1", "default/api", webStatus)
	})
	f.remove(ObjectName("node1", "default/web"))
	o, _ := f.get(ObjectName("node1", "default/api"))
	o.Status.Peers = []string{"someone-else"}
	f.put(o)
	eventually(t, "both are repaired", func() bool {
		return holds(f, "node1", "default/web", webStatus) && holds(f, "node1", "default/api", webStatus)
	})
}

// Objects of this node under a name ObjectName no longer gives (an older
// naming scheme) are replaced by the current name.
func TestObjectsUnderOldNamesAreReplaced(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.put(&v1beta1.ServiceBGPStatus{
		ObjectMeta: metav1.ObjectMeta{Name: "node1-default-web", Labels: map[string]string{
			v1beta1.LabelNode: "node1", v1beta1.LabelServiceNamespace: "default", v1beta1.LabelServiceName: "web"}},
		Status: v1beta1.ServiceBGPStatusStatus{Node: "node1", ServiceNamespace: "default", ServiceName: "web", Peers: []string{"tor1"}},
	})
	var src source
	src.set("default/web", webStatus)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)
	eventually(t, "the object has its new name", func() bool {
		return holds(f, "node1", "default/web", webStatus) && len(f.names()) == 1
	})
}

// A Service whose object was created but whose status write failed (with
// MetalLB's CRD, where the status is written after the create) is still
// deleted when it is no longer announced: the writer records the object as
// held once the create succeeded.
func TestObjectCreatedThenUnannouncedIsDeleted(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.setSubresource(true)
	var src source
	src.set("default/web", webStatus)
	f.fail("PATCH status", 1000)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)
	w.Changed("default/web")
	eventually(t, "the object is created", func() bool { return len(f.names()) == 1 })
	src.drop("default/web")
	w.Changed("default/web")
	eventually(t, "the object is deleted", func() bool { return len(f.names()) == 0 })
}

// With WithStartAfter, nothing is listed, deleted or written before the
// Source is ready: an object still true is not deleted at start-up.
func TestStartAfterReady(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.put(&v1beta1.ServiceBGPStatus{
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName("node1", "default/web"), Labels: map[string]string{
			v1beta1.LabelNode: "node1", v1beta1.LabelServiceNamespace: "default", v1beta1.LabelServiceName: "web"}},
		Status: v1beta1.ServiceBGPStatusStatus{Node: "node1", ServiceNamespace: "default", ServiceName: "web",
			Peers: webStatus.Peers, Prefixes: webStatus.Prefixes, EstablishedPeers: webStatus.EstablishedPeers},
	})
	var src source // not ready: announces nothing yet
	ready := make(chan struct{})
	w := newTestWriter(c, "node1", &src, WithStartAfter(ready))
	startWriter(t, w)
	w.Changed("default/web")
	time.Sleep(100 * time.Millisecond)
	if n := f.count("GET list") + f.count("DELETE"); n != 0 {
		t.Fatalf("%d calls before the source was ready", n)
	}
	src.set("default/web", webStatus)
	close(ready)
	eventually(t, "the start-up List", func() bool { return f.count("GET list") == 1 })
	time.Sleep(100 * time.Millisecond)
	if !holds(f, "node1", "default/web", webStatus) || f.count("DELETE")+f.count("POST")+f.count("PATCH")+f.count("PATCH status") != 0 {
		t.Errorf("the object was rewritten (deletes %d, creates %d, updates %d)", f.count("DELETE"), f.count("POST"), f.count("PATCH")+f.count("PATCH status"))
	}
}

// Each write costs as few calls as the CRD allows, and nothing is read first.
// With ecmplb's (no status subresource) a new Service's object is one create
// that carries the status, a change one patch. With MetalLB's (a status
// subresource; the writer learns it from the first create's answer) a new
// object is a create and a status patch, a change one status patch. An object
// created behind the writer's back costs a refused create and a patch; one
// deleted behind its back a refused patch, a create (and a status patch); with
// MetalLB's CRD the refused status patch is followed by a refused patch of the
// object (kube-apiserver answers a status patch the same for a missing object
// and for a CRD without the subresource).
func TestCallsPerWrite(t *testing.T) {
	type counts = map[string]int
	for _, crd := range []struct {
		name string
		sub  bool
		// want: the calls after each step.
		want []counts
	}{
		{"ecmplb's CRD", false, []counts{
			{"POST": 1},
			{"POST": 1, "PATCH": 1},
			{"POST": 1, "PATCH": 2},
			{"POST": 2, "PATCH": 3},
			{"POST": 3, "PATCH": 4},
			{"POST": 3, "PATCH": 4, "DELETE": 1},
		}},
		{"MetalLB's CRD", true, []counts{
			{"POST": 1, "PATCH status": 1},
			{"POST": 1, "PATCH status": 2},
			{"POST": 1, "PATCH status": 3},
			{"POST": 2, "PATCH status": 4},
			{"POST": 3, "PATCH status": 6, "PATCH": 1},
			{"POST": 3, "PATCH status": 6, "PATCH": 1, "DELETE": 1},
		}},
	} {
		t.Run(crd.name, func(t *testing.T) {
			f, c := newFakeAPI(t, "metallb-system")
			f.setSubresource(crd.sub)
			var src source
			w := newTestWriter(c, "node1", &src)
			startWriter(t, w)
			eventually(t, "the start-up List", func() bool { return f.count("GET list") == 1 })
			i := 0
			step := func(what string, do func(), key string, st Status) {
				t.Helper()
				do()
				w.Changed(key)
				want := crd.want[i]
				i++
				eventually(t, what, func() bool { return holds(f, "node1", key, st) && maps.Equal(f.counts(), want) })
			}
			next := Status{Peers: []string{"tor1", "tor2"}, Prefixes: []string{"203.0.113.5/32"}, EstablishedPeers: []string{"tor1", "tor2"}}
			step("a new Service is written", func() { src.set("default/web", webStatus) }, "default/web", webStatus)
			step("a change is written", func() { src.set("default/web", next) }, "default/web", next)
			step("emptied lists are removed", func() { src.set("default/web", Status{Peers: []string{"tor1"}}) }, "default/web", Status{Peers: []string{"tor1"}})
			step("an object created behind the writer's back is patched", func() {
				f.put(&v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: ObjectName("node1", "default/api"), Labels: map[string]string{
					v1beta1.LabelNode: "node1", v1beta1.LabelServiceNamespace: "default", v1beta1.LabelServiceName: "api"}}})
				src.set("default/api", webStatus)
			}, "default/api", webStatus)
			step("an object deleted behind the writer's back is created again", func() {
				f.remove(ObjectName("node1", "default/web"))
				src.set("default/web", webStatus)
			}, "default/web", webStatus)
			// An unchanged Service costs nothing; one no longer announced a delete.
			w.Changed("default/api")
			src.drop("default/web")
			w.Changed("default/web")
			want := crd.want[i]
			eventually(t, "the withdrawn Service's object is deleted", func() bool {
				_, ok := f.get(ObjectName("node1", "default/web"))
				return !ok && maps.Equal(f.counts(), want)
			})
			w.Changed("default/api")
			w.Changed("default/web")
			time.Sleep(50 * time.Millisecond) // nothing to wait for: no call may follow
			if got := f.counts(); !maps.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
		})
	}
}

// The writer follows the CRD the cluster has, whichever it meets first and
// however it changes: its first write may be a patch (objects listed at
// start-up), and the CRD may be replaced while it runs (MetalLB's installed
// over ecmplb's, and back). Each change costs one extra call, once.
func TestWriterFollowsTheCRD(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.setSubresource(true)
	stale := webStatus
	stale.EstablishedPeers = nil
	o := &v1beta1.ServiceBGPStatus{
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName("node1", "default/web"), Labels: map[string]string{
			v1beta1.LabelNode: "node1", v1beta1.LabelServiceNamespace: "default", v1beta1.LabelServiceName: "web"}},
		Status: v1beta1.ServiceBGPStatusStatus{Node: "node1", ServiceNamespace: "default", ServiceName: "web",
			Peers: stale.Peers, Prefixes: stale.Prefixes},
	}
	f.put(o)
	var src source
	src.set("default/web", webStatus)
	w := newTestWriter(c, "node1", &src)
	startWriter(t, w)
	type counts = map[string]int
	wait := func(what, key string, st Status, want counts) {
		t.Helper()
		eventually(t, what, func() bool { return holds(f, "node1", key, st) && maps.Equal(f.counts(), want) })
	}
	// MetalLB's CRD, met first by a patch: the object's patch leaves the
	// status as it was; the status patch follows, and is used from then on.
	wait("the listed object's status is written through the subresource", "default/web", webStatus, counts{"PATCH": 1, "PATCH status": 1})
	src.set("default/api", webStatus)
	w.Changed("default/api")
	wait("a new object is a create and a status patch", "default/api", webStatus, counts{"PATCH": 1, "PATCH status": 2, "POST": 1})

	// ecmplb's CRD replaces it: the status patch is not found, the object's
	// patch takes the status, and so do creates.
	f.setSubresource(false)
	next := webStatus
	next.EstablishedPeers = []string{"tor1", "tor2"}
	src.set("default/web", next)
	w.Changed("default/web")
	wait("a change goes into the object", "default/web", next, counts{"PATCH": 2, "PATCH status": 3, "POST": 1})
	src.set("default/db", webStatus)
	w.Changed("default/db")
	wait("a new object is one create", "default/db", webStatus, counts{"PATCH": 2, "PATCH status": 3, "POST": 2})

	// And back: a create's answer without the status tells.
	f.setSubresource(true)
	src.set("default/ui", webStatus)
	w.Changed("default/ui")
	wait("a create without its status is followed by a status patch", "default/ui", webStatus, counts{"PATCH": 2, "PATCH status": 4, "POST": 3})
}

// Different Services' objects are written concurrently by WithWorkers workers,
// never two calls on one object at once (the fake API fails the test if so),
// so a burst is bounded by the API server's throughput rather than by one
// call's latency.
func TestWritesRunConcurrently(t *testing.T) {
	f, c := newFakeAPI(t, "metallb-system")
	f.mu.Lock()
	f.delay = 20 * time.Millisecond
	f.mu.Unlock()
	var src source
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("default/svc-%d", i)
		keys = append(keys, k)
		src.set(k, Status{Peers: webStatus.Peers, Prefixes: webStatus.Prefixes, EstablishedPeers: []string{"tor0"}})
	}
	w := newTestWriter(c, "node1", &src, WithWorkers(6))
	startWriter(t, w)
	for round := range 3 {
		for _, k := range keys {
			w.Changed(k)
			w.Changed(k) // coalesced
		}
		st := Status{Peers: webStatus.Peers, Prefixes: webStatus.Prefixes, EstablishedPeers: []string{fmt.Sprintf("tor%d", round)}}
		eventually(t, "every object holds the status", func() bool {
			for _, k := range keys {
				if !holds(f, "node1", k, st) {
					return false
				}
			}
			return true
		})
		if round < 2 {
			for _, k := range keys {
				src.set(k, Status{Peers: webStatus.Peers, Prefixes: webStatus.Prefixes, EstablishedPeers: []string{fmt.Sprintf("tor%d", round+1)}})
			}
		}
	}
	f.mu.Lock()
	got := f.maxInFlight
	f.mu.Unlock()
	if got != 6 {
		t.Errorf("at most %d calls at once, want 6 (the workers)", got)
	}
}

// The digest that stands for a written status tells apart statuses whose
// elements only move between lists or split differently, and ignores nothing.
func TestDigestSeparatesStatuses(t *testing.T) {
	all := []Status{
		{},
		{Peers: []string{"a"}},
		{Prefixes: []string{"a"}},
		{EstablishedPeers: []string{"a"}},
		{Peers: []string{"a", "b"}},
		{Peers: []string{"ab"}},
		{Peers: []string{"a"}, Prefixes: []string{"b"}},
		{Peers: []string{"b", "a"}},
		{Peers: []string{"a"}, EstablishedPeers: []string{"a"}},
		{Peers: []string{"a", ""}},
		webStatus,
	}
	seen := map[digest]int{}
	for i, s := range all {
		d := s.digest()
		if j, ok := seen[d]; ok {
			t.Errorf("statuses %+v and %+v share a digest", all[j], s)
		}
		seen[d] = i
		if s.digest() != d {
			t.Errorf("digest of %+v is not stable", s)
		}
	}
	if (Status{Peers: []string{}}).digest() != (Status{}).digest() {
		t.Error("an empty list and no list are the same status (both are written as no list)")
	}
}
