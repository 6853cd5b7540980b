package reconciler

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// TestWrittenSkipsOwnStaleCopies plays the sequence that made the
// controller write the pool annotation twice: status written (version 2),
// annotation written (3), then the update event of 2 arrives first.
func TestWrittenSkipsOwnStaleCopies(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.1")
	cached := func(rv string, ips bool, pool string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ResourceVersion: rv}}
		if ips {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
		}
		if pool != "" {
			s.Annotations = map[string]string{v1beta1.AnnotationIPAllocatedFrom: pool}
		}
		return s
	}
	var w Written
	if got, fresh := w.View(cached("1", false, "")); len(got.IPs) != 0 || got.Pool != "" || fresh {
		t.Fatalf("nothing written yet: %+v fresh=%v", got, fresh)
	}
	w = w.Wrote("1", "2", Shape{IPs: []netip.Addr{ip}})
	w = w.Wrote("2", "3", Shape{IPs: []netip.Addr{ip}, Pool: "p"})
	want := Shape{IPs: []netip.Addr{ip}, Pool: "p"}
	for _, stale := range []*corev1.Service{cached("1", false, ""), cached("2", true, "")} {
		got, fresh := w.View(stale)
		if fresh || !slices.Equal(got.IPs, want.IPs) || got.Pool != want.Pool {
			t.Errorf("cached at %s (before our last write): view %+v fresh=%v, want %+v as our writes left it",
				stale.ResourceVersion, got, fresh, want)
		}
	}
	if got, fresh := w.View(cached("3", true, "p")); !fresh || got.Pool != "p" {
		t.Errorf("cached at our last write: view %+v fresh=%v, want the cache and the record dropped", got, fresh)
	}
	// Someone removed the annotation after our write: the cache is the
	// truth, so it is written again.
	if got, fresh := w.View(cached("4", true, "")); !fresh || got.Pool != "" {
		t.Errorf("changed by someone else: view %+v fresh=%v, want the cache", got, fresh)
	}
	if w2 := w.Wrote("3", "", Shape{}); w2.Latest != "" {
		t.Errorf("a write with no version back (Service gone) must clear the record: %+v", w2)
	}
}
