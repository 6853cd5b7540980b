package conversion

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/randfill"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

var (
	typeV1beta1 = metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "BGPPeer"}
	typeV1beta2 = metav1.TypeMeta{APIVersion: "metallb.io/v1beta2", Kind: "BGPPeer"}
)

// fullV1beta1 sets every field of a v1beta1 BGPPeer (allFieldsSet checks it).
func fullV1beta1() *v1beta1.BGPPeer {
	return &v1beta1.BGPPeer{TypeMeta: typeV1beta1,
		ObjectMeta: metav1.ObjectMeta{Name: "tor1", Namespace: "metallb-system", Labels: map[string]string{"a": "b"}},
		Spec: v1beta1.BGPPeerSpec{
			MyASN: 65100, ASN: 65000, DynamicASN: v1beta1.ExternalASNMode, Address: "10.0.0.1", Interface: "eth0",
			SrcAddress: "10.0.0.21", Port: 1179,
			HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
			ConnectTime: &metav1.Duration{Duration: 2 * time.Second}, RouterID: "10.0.0.21",
			NodeSelectors: []v1beta1.NodeSelector{
				{MatchLabels: map[string]string{"rack": "1"}},
				{MatchExpressions: []v1beta1.MatchExpression{
					{Key: "zone", Operator: "In", Values: []string{"a", "b"}},
					{Key: "edge", Operator: "Exists"},
				}},
			},
			Password: "pw", PasswordSecret: corev1.SecretReference{Name: "s", Namespace: "ns"}, BFDProfile: "fast",
			EnableGracefulRestart: true, EBGPMultiHop: true, VRFName: "red", DisableMP: true, DualStackAddressFamily: true,
		}}
}

// fullV1beta2 is fullV1beta1 in v1beta2.
func fullV1beta2() *v1beta2.BGPPeer {
	return &v1beta2.BGPPeer{TypeMeta: typeV1beta2,
		ObjectMeta: metav1.ObjectMeta{Name: "tor1", Namespace: "metallb-system", Labels: map[string]string{"a": "b"}},
		Spec: v1beta2.BGPPeerSpec{
			MyASN: 65100, ASN: 65000, DynamicASN: v1beta2.ExternalASNMode, Address: "10.0.0.1", Interface: "eth0",
			SrcAddress: "10.0.0.21", Port: 1179,
			HoldTime: &metav1.Duration{Duration: 9 * time.Second}, KeepaliveTime: &metav1.Duration{Duration: 3 * time.Second},
			ConnectTime: &metav1.Duration{Duration: 2 * time.Second}, RouterID: "10.0.0.21",
			NodeSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{"rack": "1"}},
				{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}},
					{Key: "edge", Operator: metav1.LabelSelectorOpExists},
				}},
			},
			Password: "pw", PasswordSecret: corev1.SecretReference{Name: "s", Namespace: "ns"}, BFDProfile: "fast",
			EnableGracefulRestart: true, EBGPMultiHop: true, VRFName: "red", DisableMP: true, DualStackAddressFamily: true,
		}}
}

// zeroFields lists the fields of v (a struct) that hold their zero value.
func zeroFields(v any) []string {
	rv := reflect.ValueOf(v)
	var zero []string
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			zero = append(zero, rv.Type().Field(i).Name)
		}
	}
	return zero
}

// The fixtures set every spec field, so the tests below cover each one: a
// field added to either version fails here until the fixtures (and so the
// conversion, checked below) know it.
func TestFixturesSetEveryField(t *testing.T) {
	if z := zeroFields(fullV1beta1().Spec); len(z) > 0 {
		t.Errorf("v1beta1 fixture leaves %v unset", z)
	}
	if z := zeroFields(fullV1beta2().Spec); len(z) > 0 {
		t.Errorf("v1beta2 fixture leaves %v unset", z)
	}
}

// jsonNames returns the JSON names of the fields of struct type t.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		names = append(names, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
	}
	return names
}

// Both versions have the same fields under the same JSON names: what makes
// the conversion lossless and the CRD's None strategy safe.
func TestSpecFieldsMatch(t *testing.T) {
	a, b := jsonNames(reflect.TypeFor[v1beta1.BGPPeerSpec]()), jsonNames(reflect.TypeFor[v1beta2.BGPPeerSpec]())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("v1beta1 spec fields %v\nv1beta2 spec fields %v", a, b)
	}
	a, b = jsonNames(reflect.TypeFor[v1beta1.NodeSelector]()), jsonNames(reflect.TypeFor[metav1.LabelSelector]())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("NodeSelector %v, LabelSelector %v", a, b)
	}
	a, b = jsonNames(reflect.TypeFor[v1beta1.MatchExpression]()), jsonNames(reflect.TypeFor[metav1.LabelSelectorRequirement]())
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("MatchExpression %v, LabelSelectorRequirement %v", a, b)
	}
}

func TestBGPPeerConversion(t *testing.T) {
	tests := []struct {
		name string
		v1   *v1beta1.BGPPeer
		v2   *v1beta2.BGPPeer
	}{
		{name: "every field", v1: fullV1beta1(), v2: fullV1beta2()},
		{name: "minimal",
			v1: &v1beta1.BGPPeer{TypeMeta: typeV1beta1, Spec: v1beta1.BGPPeerSpec{MyASN: 1, ASN: 2, Address: "10.0.0.1"}},
			v2: &v1beta2.BGPPeer{TypeMeta: typeV1beta2, Spec: v1beta2.BGPPeerSpec{MyASN: 1, ASN: 2, Address: "10.0.0.1"}}},
		{name: "empty lists and maps stay empty, not nil",
			v1: &v1beta1.BGPPeer{TypeMeta: typeV1beta1, Spec: v1beta1.BGPPeerSpec{NodeSelectors: []v1beta1.NodeSelector{
				{MatchLabels: map[string]string{}, MatchExpressions: []v1beta1.MatchExpression{{Key: "k", Operator: "In", Values: []string{}}}},
				{MatchExpressions: []v1beta1.MatchExpression{}},
			}}},
			v2: &v1beta2.BGPPeer{TypeMeta: typeV1beta2, Spec: v1beta2.BGPPeerSpec{NodeSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{}, MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "In", Values: []string{}}}},
				{MatchExpressions: []metav1.LabelSelectorRequirement{}},
			}}}},
		{name: "empty selector list",
			v1: &v1beta1.BGPPeer{TypeMeta: typeV1beta1, Spec: v1beta1.BGPPeerSpec{NodeSelectors: []v1beta1.NodeSelector{}}},
			v2: &v1beta2.BGPPeer{TypeMeta: typeV1beta2, Spec: v1beta2.BGPPeerSpec{NodeSelectors: []metav1.LabelSelector{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BGPPeerToV1beta2(tt.v1); !reflect.DeepEqual(got, tt.v2) {
				t.Errorf("to v1beta2:\n got %#v\nwant %#v", got, tt.v2)
			}
			if got := BGPPeerToV1beta1(tt.v2); !reflect.DeepEqual(got, tt.v1) {
				t.Errorf("to v1beta1:\n got %#v\nwant %#v", got, tt.v1)
			}
		})
	}
}

// The result shares no memory with the input: changing one never changes
// the other (informer caches hand out shared objects).
func TestBGPPeerConversionCopies(t *testing.T) {
	in := fullV1beta1()
	out := BGPPeerToV1beta2(in)
	out.Spec.NodeSelectors[0].MatchLabels["rack"] = "9"
	out.Spec.NodeSelectors[1].MatchExpressions[0].Values[0] = "z"
	out.Spec.HoldTime.Duration = time.Hour
	out.Labels["a"] = "z"
	if !reflect.DeepEqual(in, fullV1beta1()) {
		t.Fatalf("input changed: %#v", in)
	}
	in2 := fullV1beta2()
	out2 := BGPPeerToV1beta1(in2)
	out2.Spec.NodeSelectors[0].MatchLabels["rack"] = "9"
	out2.Spec.ConnectTime.Duration = time.Hour
	if !reflect.DeepEqual(in2, fullV1beta2()) {
		t.Fatalf("input changed: %#v", in2)
	}
}

// filler fills every field, nil or not at random, so nil and empty lists
// and maps are both tried.
func filler(f *randfill.Filler) *randfill.Filler {
	return f.NilChance(0.2).NumElements(0, 3).MaxDepth(8)
}

// checkRoundTrip fails when either round trip (typed, and through the
// webhook's JSON path) is not the identity.
func checkRoundTrip(t *testing.T, p1 *v1beta1.BGPPeer, p2 *v1beta2.BGPPeer) {
	t.Helper()
	p1.TypeMeta, p2.TypeMeta = typeV1beta1, typeV1beta2
	if got := BGPPeerToV1beta1(BGPPeerToV1beta2(p1)); !reflect.DeepEqual(got, p1) {
		t.Fatalf("v1beta1 -> v1beta2 -> v1beta1:\n got %#v\nwant %#v", got, p1)
	}
	if got := BGPPeerToV1beta2(BGPPeerToV1beta1(p2)); !reflect.DeepEqual(got, p2) {
		t.Fatalf("v1beta2 -> v1beta1 -> v1beta2:\n got %#v\nwant %#v", got, p2)
	}
	// JSON: metadata passes through untouched, so a simple one will do (random
	// managedFields are not valid JSON).
	p1.ObjectMeta = metav1.ObjectMeta{Name: p1.Name, Namespace: p1.Namespace}
	p2.ObjectMeta = metav1.ObjectMeta{Name: p2.Name, Namespace: p2.Namespace}
	checkJSONRoundTrip(t, p1, "metallb.io/v1beta2")
	checkJSONRoundTrip(t, p2, "metallb.io/v1beta1")
}

func checkJSONRoundTrip(t *testing.T, obj any, via string) {
	t.Helper()
	in, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var from struct {
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(in, &from); err != nil {
		t.Fatal(err)
	}
	mid, err := Convert(in, via)
	if err != nil {
		t.Fatalf("to %s: %v\n%s", via, err, in)
	}
	back, err := Convert(mid, from.APIVersion)
	if err != nil {
		t.Fatalf("back to %s: %v\n%s", from.APIVersion, err, mid)
	}
	if !jsonEqual(t, in, back) {
		t.Fatalf("JSON round trip via %s:\n  in %s\n mid %s\nback %s", via, in, mid, back)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestRoundTripFixtures(t *testing.T) {
	checkRoundTrip(t, fullV1beta1(), fullV1beta2())
}

// A deterministic sample of random objects, so every test run covers what
// the fuzz test explores.
func TestRoundTripRandom(t *testing.T) {
	for seed := range int64(2000) {
		f := filler(randfill.NewWithSeed(seed))
		var p1 v1beta1.BGPPeer
		var p2 v1beta2.BGPPeer
		f.Fill(&p1)
		f.Fill(&p2)
		checkRoundTrip(t, &p1, &p2)
	}
}

func FuzzBGPPeerRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "\x00", "nodeSelectors", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl := filler(randfill.NewFromGoFuzz(data))
		var p1 v1beta1.BGPPeer
		var p2 v1beta2.BGPPeer
		fl.Fill(&p1)
		fl.Fill(&p2)
		checkRoundTrip(t, &p1, &p2)
	})
}
