package lease

import (
	"context"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestRenewOnce walks the renewer through the states it converges from: no
// Lease (created), a known one (updated), a conflict (read again next time),
// a deleted one (created again).
func TestRenewOnce(t *testing.T) {
	cs := fake.NewClientset()
	o := Options{Namespace: "ns", Node: "n1", Liveness: cfg}
	leases := cs.CoordinationV1().Leases("ns")
	ctx := context.Background()
	sent := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

	check := func(step string, want time.Time) {
		t.Helper()
		l, err := leases.Get(ctx, "ecmplb-speaker-n1", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(want) || *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 1 {
			t.Fatalf("%s: lease spec %+v, want renewTime %v, holder n1, 1 s", step, l.Spec, want)
		}
	}

	cur, err := renewOnce(ctx, o, leases, nil, sent)
	if err != nil || cur == nil {
		t.Fatalf("create: %v %v", cur, err)
	}
	check("created", sent)

	sent = sent.Add(period)
	if cur, err = renewOnce(ctx, o, leases, cur, sent); err != nil || cur == nil {
		t.Fatalf("update: %v %v", cur, err)
	}
	check("updated", sent)

	conflicts := 1
	cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts > 0 {
			conflicts--
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "ecmplb-speaker-n1", nil)
		}
		return false, nil, nil
	})
	sent = sent.Add(period)
	if cur, err = renewOnce(ctx, o, leases, cur, sent); err == nil || cur != nil {
		t.Fatalf("conflict: got %v, %v; want an error and the Lease to be read again", cur, err)
	}
	if cur, err = renewOnce(ctx, o, leases, cur, sent); err != nil || cur == nil {
		t.Fatalf("after the conflict: %v %v", cur, err)
	}
	check("read again and updated", sent)

	if err := leases.Delete(ctx, "ecmplb-speaker-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sent = sent.Add(period)
	if cur, err = renewOnce(ctx, o, leases, cur, sent); err == nil || cur != nil {
		t.Fatalf("deleted: got %v, %v; want an error and the Lease to be read again", cur, err)
	}
	if cur, err = renewOnce(ctx, o, leases, cur, sent); err != nil || cur == nil {
		t.Fatalf("recreate: %v %v", cur, err)
	}
	check("created again", sent)
}

func TestNodeOf(t *testing.T) {
	for name, want := range map[string]string{"ecmplb-speaker-n1": "n1", "ecmplb-speaker-": "", "ecmplb-controller": "", "kube-node-n1": ""} {
		got, ok := nodeOf(&coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}})
		if got != want || ok != (want != "") {
			t.Errorf("nodeOf(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := nodeOf("not a lease"); ok {
		t.Error("nodeOf(string) accepted")
	}
}
