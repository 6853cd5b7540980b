package reconciler

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/scheme"
)

// TestWriteShapeFallsBackWhenStatusDropsMetadata: the controller writes the
// address and the pool annotation in one status patch (the real apiserver
// keeps metadata from a status write: TestIntegration counts one PATCH). An
// apiserver that resets all but status on a status write (as the fake
// client does, and as custom resources do) must not lose the annotation, nor
// make the controller patch forever: the answer is read back, the
// annotation is written apart, and every later write goes apart at once.
func TestWriteShapeFallsBackWhenStatusDropsMetadata(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	var calls []string
	cl := fake.NewClientBuilder().WithScheme(scheme.Scheme).WithObjects(svc).WithStatusSubresource(&corev1.Service{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				calls = append(calls, "patch")
				return c.Patch(ctx, obj, patch, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				calls = append(calls, "patch "+sub)
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	c := &Controller{client: cl, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	ip := netip.MustParseAddr("203.0.113.5")

	got, rv, err := c.writeShape(ctx, svc, true, []netip.Addr{ip}, "prod-pool")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IPs, []netip.Addr{ip}) || got.Pool != "prod-pool" || rv == "" {
		t.Fatalf("written shape %+v at %q, want %v from prod-pool", got, rv, ip)
	}
	if !slices.Equal(calls, []string{"patch status", "patch"}) || !c.annotateApart.Load() {
		t.Fatalf("requests %v (apart %v), want the status patch, then the annotation apart", calls, c.annotateApart.Load())
	}
	stored := &corev1.Service{}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(svc), stored); err != nil {
		t.Fatal(err)
	}
	if stored.Annotations[v1beta1.AnnotationIPAllocatedFrom] != "prod-pool" || !slices.Equal(StatusIPs(stored), []netip.Addr{ip}) {
		t.Fatalf("stored %v %v", stored.Annotations, stored.Status.LoadBalancer)
	}

	calls = nil
	if got, _, err = c.writeShape(ctx, stored, false, nil, "other-pool"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"patch"}) || got.Pool != "other-pool" || !slices.Equal(got.IPs, []netip.Addr{ip}) {
		t.Fatalf("the next annotation: requests %v, shape %+v; want one patch of the object", calls, got)
	}

	calls = nil
	if got, _, err = c.writeShape(ctx, stored, true, nil, ""); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []string{"patch status"}) || len(got.IPs) != 0 {
		t.Fatalf("removing the address: requests %v, shape %+v; want one status patch leaving none", calls, got)
	}
}
