package reconciler

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// storedService is a LoadBalancer Service as the API server returns it
// after a create and the controller's status patch: what the Service
// informer receives at a restart.
func storedService(i int) *corev1.Service {
	created := metav1.Unix(1_700_000_000+int64(i), 0)
	fam := corev1.IPFamilyPolicySingleStack
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%05d", i), Namespace: "bench", UID: types.UID(fmt.Sprintf("6f1c2d4e-8a9b-4c3d-9e8f-%012d", i)),
			ResourceVersion: fmt.Sprint(100000 + i), CreationTimestamp: created,
			Annotations: map[string]string{v1beta1.AnnotationIPAllocatedFrom: "default"},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "bench", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created, FieldsType: "FieldsV1",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:allocateLoadBalancerNodePorts":{},"f:externalTrafficPolicy":{},"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}`)}},
				{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &created, FieldsType: "FieldsV1",
					FieldsV1:    &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{".":{},"f:metallb.io/ip-allocated-from-pool":{}}},"f:status":{"f:loadBalancer":{"f:ingress":{}}}}`)},
					Subresource: "status"},
			}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": fmt.Sprintf("svc-%05d", i)},
			Ports:     []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt(80)}},
			ClusterIP: "10.96.12.34", ClusterIPs: []string{"10.96.12.34"}, SessionAffinity: corev1.ServiceAffinityNone,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			IPFamilyPolicy: &fam, AllocateLoadBalancerNodePorts: new(false), InternalTrafficPolicy: new(corev1.ServiceInternalTrafficPolicyCluster),
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: fmt.Sprintf("10.200.%d.%d", i/256%256, i%256), IPMode: new(corev1.LoadBalancerIPModeVIP)}}}},
	}
}

// compactOfWire is what the informer made before: the whole Service
// decoded from b, then compacted.
func compactOfWire(t testing.TB, b []byte) *Svc {
	t.Helper()
	var svc corev1.Service
	if err := svc.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	return Compact(&svc)
}

// TestDecodeSvcIsCompact: for random Services (every field Compact reads,
// in the combinations TestCompactDecidesAsWhole draws) and stored ones,
// DecodeSvc of the encoding makes exactly the Svc that Compact makes of
// the decoded Service.
func TestDecodeSvcIsCompact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	svcs := []*corev1.Service{storedService(1), {}}
	for i := range 3000 {
		svcs = append(svcs, randomService(r, i))
	}
	for i, svc := range svcs {
		if i%2 == 0 && len(svc.Labels) == 0 {
			svc.Labels = map[string]string{"a": "1", "b": ""}
		}
		b, err := svc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSvc(b)
		if err != nil {
			t.Fatalf("Service %d: %v", i, err)
		}
		if want := compactOfWire(t, b); !reflect.DeepEqual(got, want) {
			t.Fatalf("Service %d (%s):\n got %+v\nwant %+v", i, svc.Name, got, want)
		}
	}
}

// TestDecodeSvcRejectsMalformed: a truncated encoding or a field of the
// wrong wire type is an error, never a half-read Svc.
func TestDecodeSvcRejectsMalformed(t *testing.T) {
	b, err := storedService(3).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{1, 7, len(b) / 2, len(b) - 1} {
		if _, err := DecodeSvc(b[:cut]); err == nil {
			t.Errorf("DecodeSvc of the first %d of %d bytes: no error", cut, len(b))
		}
	}
	// metadata (field 1) as a varint.
	if _, err := DecodeSvc([]byte{0x08, 0x01}); err == nil {
		t.Error("metadata as a varint: no error")
	}
}

// readList reads b, the encoding of a ServiceList, through a reader of the
// smallest buffer (so fields cross buffer refills), as ReadSvcList.
func readList(b []byte, size uint64) (*SvcList, error) {
	l := &SvcList{}
	meta, err := ReadSvcList(bufio.NewReaderSize(bytes.NewReader(b), 16), size, func(s *Svc) error {
		l.Items = append(l.Items, s)
		return nil
	})
	l.ListMeta = meta
	return l, err
}

// TestReadSvcList reads a ServiceList's metadata and items in order, each
// item exactly as DecodeSvc reads it alone (no item keeps bytes of the
// buffer the next one is read into), stepping over fields it does not read.
func TestReadSvcList(t *testing.T) {
	remaining := int64(4)
	list := &corev1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "next", RemainingItemCount: &remaining}}
	r := rand.New(rand.NewPCG(3, 5))
	for i := range 40 {
		svc := storedService(i)
		if i%2 == 1 {
			svc = randomService(r, i)
		}
		list.Items = append(list.Items, *svc)
	}
	b, err := list.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Fields a newer API server might add, of every wire type.
	b = protowire.AppendTag(b, 9, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<40)
	b = protowire.AppendTag(b, 10, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 7)
	b = protowire.AppendTag(b, 11, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = protowire.AppendTag(b, 12, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, 100))
	for _, size := range []uint64{uint64(len(b)), ToEOF} {
		got, err := readList(b, size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got.ResourceVersion != "42" || got.Continue != "next" || got.RemainingItemCount == nil || *got.RemainingItemCount != 4 {
			t.Errorf("list metadata %+v", got.ListMeta)
		}
		if len(got.Items) != len(list.Items) {
			t.Fatalf("%d items, want %d", len(got.Items), len(list.Items))
		}
		for i := range got.Items {
			item, err := list.Items[i].Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := DecodeSvc(item); !reflect.DeepEqual(want, got.Items[i]) {
				t.Errorf("item %d:\n got %+v\nwant %+v", i, got.Items[i], want)
			}
		}
		if c := got.DeepCopyObject().(*SvcList); !reflect.DeepEqual(c, got) {
			t.Error("DeepCopyObject differs")
		}
	}
}

// TestReadSvcListRejectsMalformed: a stream that ends early, a list longer
// than it says, or an item of the wrong wire type is an error, never a
// shorter list; an error of the callback ends the read with that error.
func TestReadSvcListRejectsMalformed(t *testing.T) {
	list := &corev1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "42"},
		Items: []corev1.Service{*storedService(1), *storedService(2)}}
	b, err := list.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for cut := range len(b) {
		if _, err := readList(b[:cut], uint64(len(b))); err == nil {
			t.Fatalf("the first %d of %d bytes: no error", cut, len(b))
		}
	}
	// Said to be shorter than it is: the last field overruns.
	if _, err := readList(b, uint64(len(b)-1)); err == nil {
		t.Error("a list longer than its size: no error")
	}
	// Items (field 2) as a varint.
	if _, err := readList([]byte{0x10, 0x01}, 2); err == nil {
		t.Error("items as a varint: no error")
	}
	stop := errors.New("stop")
	n := 0
	_, err = ReadSvcList(bufio.NewReader(bytes.NewReader(b)), uint64(len(b)), func(*Svc) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: got %v after %d items", err, n)
	}
}

// TestDecodeBookmark keeps a bookmark's resourceVersion and the marker of
// the end of the initial events, readable through GetAnnotations as the
// informer reads it.
func TestDecodeBookmark(t *testing.T) {
	bm := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "77",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true", "other": "x"}}}
	b, err := bm.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBookmark(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.GetResourceVersion() != "77" || got.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" || len(got.GetAnnotations()) != 1 {
		t.Errorf("bookmark: rv %q annotations %v", got.GetResourceVersion(), got.GetAnnotations())
	}
}

// FuzzDecodeSvc: DecodeSvc never panics; whatever bytes both it and the
// generated decoder accept, they read alike; and the encoding of whatever
// the generated decoder read (canonical, as the API server encodes) is
// accepted by DecodeSvc and read as Compact reads it. (The generated
// decoder also accepts some malformed input DecodeSvc refuses, such as a
// map key running past its entry.)
func FuzzDecodeSvc(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		b, err := randomService(r, i).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	b, _ := storedService(9).Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := DecodeSvc(b)
		var svc corev1.Service
		if svc.Unmarshal(b) != nil {
			return
		}
		want := Compact(&svc)
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("\n got %+v\nwant %+v", got, want)
		}
		canon, err := svc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got, err = DecodeSvc(canon); err != nil {
			t.Fatalf("canonical encoding: %v", err)
		}
		if !reflect.DeepEqual(got, compactOfWire(t, canon)) {
			t.Fatalf("canonical encoding:\n got %+v\nwant %+v", got, want)
		}
	})
}

// BenchmarkDecodeService compares, per stored Service, decoding the whole
// corev1.Service and compacting it (the informer before) with DecodeSvc.
func BenchmarkDecodeService(b *testing.B) {
	enc := make([][]byte, 1000)
	for i := range enc {
		var err error
		if enc[i], err = storedService(i).Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("whole+Compact", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var svc corev1.Service
			if err := svc.Unmarshal(enc[i%len(enc)]); err != nil {
				b.Fatal(err)
			}
			_ = Compact(&svc)
		}
	})
	b.Run("DecodeSvc", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := DecodeSvc(enc[i%len(enc)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
