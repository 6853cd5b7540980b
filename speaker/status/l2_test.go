package status

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// l2Object is the object of node for a Service as a speaker would have
// written it.
func l2Object(node, key string, ifs ...string) *v1beta1.ServiceL2Status {
	ns, svc, _ := strings.Cut(key, "/")
	o := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: ObjectName(node, key), Labels: map[string]string{
		v1beta1.LabelNode: node, v1beta1.LabelServiceName: svc, v1beta1.LabelServiceNamespace: ns}},
		Status: v1beta1.MetalLBServiceL2Status{Node: node, ServiceName: svc, ServiceNamespace: ns}}
	for _, i := range ifs {
		o.Status.Interfaces = append(o.Status.Interfaces, v1beta1.InterfaceInfo{Name: i})
	}
	return o
}

// l2Holds renders what the API holds for node and key: "" if nothing, else
// the interfaces; "BAD" when the object's metadata or status is not right.
func l2Holds(f *l2API, node, key string) string {
	o, ok := f.get(ObjectName(node, key))
	if !ok {
		return ""
	}
	ns, svc, _ := strings.Cut(key, "/")
	s := o.Status
	if s.Node != node || s.ServiceName != svc || s.ServiceNamespace != ns || o.Labels[v1beta1.LabelNode] != node ||
		o.Labels[v1beta1.LabelServiceName] != svc || o.Labels[v1beta1.LabelServiceNamespace] != ns {
		return "BAD"
	}
	var ifs []string
	for _, i := range s.Interfaces {
		ifs = append(ifs, i.Name)
	}
	return "ifs=" + strings.Join(ifs, ",")
}

func startL2Writer(t *testing.T, node string, c rest.Interface, opts ...Option) *L2Writer {
	opts = append([]Option{WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	l := NewL2Writer(c, "metallb-system", node, quietLog(), opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return l
}

// The object exists exactly while the node answers, with MetalLB's fields
// and labels; no interfaces listed means all of them.
func TestL2WriterFollowsSetL2(t *testing.T) {
	f, c := newL2API(t)
	l := startL2Writer(t, "node1", c)
	l.SetL2("default/web", []string{"eth1", "eth0", "eth1"}, true)
	eventually(t, "the object written", func() bool { return l2Holds(f, "node1", "default/web") == "ifs=eth0,eth1" })
	l.SetL2("default/web", nil, true)
	eventually(t, "all interfaces", func() bool { return l2Holds(f, "node1", "default/web") == "ifs=" })
	l.SetL2("default/web", nil, false)
	eventually(t, "the object deleted", func() bool { return len(f.names()) == 0 })
	// Not answering, never answered: no call.
	before := f.count("DELETE")
	l.SetL2("default/other", nil, false)
	time.Sleep(50 * time.Millisecond)
	if n := f.count("DELETE") - before; n != 0 {
		t.Errorf("%d deletes for a Service that never had an object", n)
	}
}

// The node that takes a Service over deletes the objects the others left
// (one that failed cannot); other Services' objects stay.
func TestL2WriterTakesOver(t *testing.T) {
	f, c := newL2API(t)
	f.put(l2Object("node2", "default/web", "eth0"))
	f.put(l2Object("node2", "default/db"))
	f.put(l2Object("node3", "default/web"))
	l := startL2Writer(t, "node1", c)
	l.SetL2("default/web", []string{"eth0"}, true)
	eventually(t, "node1 holds web alone", func() bool {
		return l2Holds(f, "node1", "default/web") == "ifs=eth0" && l2Holds(f, "node2", "default/web") == "" && l2Holds(f, "node3", "default/web") == ""
	})
	if got := l2Holds(f, "node2", "default/db"); got != "ifs=" {
		t.Errorf("node2's object of another Service: %q", got)
	}
}

// Failed calls are retried; the List of the other nodes' objects too.
func TestL2WriterRetries(t *testing.T) {
	f, c := newL2API(t)
	f.put(l2Object("node2", "default/web"))
	for _, op := range []string{"POST", "PATCH status", "DELETE"} {
		f.fail(op, 2)
	}
	l := startL2Writer(t, "node1", c)
	eventually(t, "the start-up List", func() bool { return f.count("GET list") >= 1 })
	f.fail("GET list", 2)
	l.SetL2("default/web", []string{"eth0"}, true)
	eventually(t, "written despite failures", func() bool {
		return l2Holds(f, "node1", "default/web") == "ifs=eth0" && l2Holds(f, "node2", "default/web") == ""
	})
}

// At start-up, once the runtime is ready, this node's objects of Services it
// no longer answers for are deleted; the others stay without a write.
func TestL2WriterStartupCleanup(t *testing.T) {
	f, c := newL2API(t)
	f.put(l2Object("node1", "default/web", "eth0"))
	f.put(l2Object("node1", "default/gone"))
	f.put(l2Object("node2", "default/db"))
	ready := make(chan struct{})
	l := startL2Writer(t, "node1", c, WithStartAfter(ready))
	l.SetL2("default/web", []string{"eth0"}, true)
	time.Sleep(20 * time.Millisecond)
	if f.count("GET list") != 0 {
		t.Fatal("listed before ready")
	}
	close(ready)
	eventually(t, "the stale object deleted", func() bool { return l2Holds(f, "node1", "default/gone") == "" })
	time.Sleep(50 * time.Millisecond)
	want := []string{ObjectName("node1", "default/web"), ObjectName("node2", "default/db")}
	slices.Sort(want)
	if got := f.names(); !slices.Equal(got, want) {
		t.Errorf("objects %v, want %v", got, want)
	}
	if n := f.count("POST") + f.count("PATCH status"); n != 0 {
		t.Errorf("%d writes for an object that was right", n)
	}
}
