package conversion

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

const peerNamespace = "metallb-system"

func peersIn(version string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "metallb.io", Version: version, Resource: "bgppeers"}
}

// peerFromYAML parses a BGPPeer manifest; the namespace is peerNamespace.
func peerFromYAML(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(peerNamespace)
	return u
}

// specOf returns u's spec as encoding/json decodes it (numbers as float64,
// whether u came from YAML or from the apiserver).
func specOf(t *testing.T, u *unstructured.Unstructured) any {
	t.Helper()
	s, ok := u.Object["spec"]
	if !ok {
		t.Fatalf("%s: no spec", u.GetName())
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// typed decodes u strictly into the Go type of its version.
func typed(t *testing.T, u *unstructured.Unstructured, into runtime.Object) {
	t.Helper()
	b, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(b, into); err != nil {
		t.Fatalf("%s as %T: %v", u.GetName(), into, err)
	}
}

// readBoth reads the peer through v1beta1 and v1beta2, checks that both carry
// want (the spec as written) and that the typed objects convert into each
// other.
func readBoth(ctx context.Context, t *testing.T, dyn dynamic.Interface, name string, want any) {
	t.Helper()
	var p1 v1beta1.BGPPeer
	var p2 v1beta2.BGPPeer
	for _, v := range []string{"v1beta1", "v1beta2"} {
		got, err := dyn.Resource(peersIn(v)).Namespace(peerNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s through %s: %v", name, v, err)
		}
		if got.GetAPIVersion() != "metallb.io/"+v {
			t.Errorf("read through %s as %s", v, got.GetAPIVersion())
		}
		if s := specOf(t, got); !reflect.DeepEqual(s, want) {
			t.Errorf("%s through %s:\n got %v\nwant %v", name, v, s, want)
		}
		if v == "v1beta1" {
			typed(t, got, &p1)
		} else {
			typed(t, got, &p2)
		}
	}
	if got := BGPPeerToV1beta2(&p1); !reflect.DeepEqual(got.Spec, p2.Spec) {
		t.Errorf("%s: v1beta1 read converted\n got %#v\nwant %#v (v1beta2 read)", name, got.Spec, p2.Spec)
	}
}

// TestAPIServer checks the CRD of deploy/crds on a real apiserver: a BGPPeer
// written through either version reads back the same through both, and
// the fields ecmplb does not run yet are refused at create.
func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{})
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	writes := []struct {
		name, via, manifest string
	}{
		{name: "v1beta1 node selectors", via: "v1beta1", manifest: `
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: selectors}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 172.30.0.3
  peerPort: 180
  holdTime: 9s
  keepaliveTime: 3s
  nodeSelectors:
  - matchLabels: {rack: frontend}
    matchExpressions:
    - {key: network-speed, operator: NotIn, values: [slow]}
    - {key: edge, operator: Exists}
  - matchExpressions:
    - {key: kubernetes.io/hostname, operator: In, values: [hostA, hostB]}
`},
		{name: "v1beta2-only fields", via: "v1beta2", manifest: `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: v1beta2-fields}
spec:
  myASN: 4200000000
  peerASN: 4200000001
  peerAddress: 10.0.0.1
  sourceAddress: 10.0.0.21
  routerID: 10.0.0.21
  connectTime: 2s
  passwordSecret: {name: bgp-secret, namespace: metallb-system}
  bfdProfile: fast
  enableGracefulRestart: true
  ebgpMultiHop: true
  disableMP: true
  dualStackAddressFamily: true
  nodeSelectors:
  - matchExpressions:
    - {key: zone, operator: DoesNotExist}
`},
		{name: "v1beta1 with v1beta2 fields", via: "v1beta1", manifest: `
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: v1beta1-superset}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 10.0.0.2
  connectTime: 5s
  enableGracefulRestart: true
  password: secret
`},
	}
	for _, w := range writes {
		t.Run("write through "+w.via+": "+w.name, func(t *testing.T) {
			u := peerFromYAML(t, w.manifest)
			want := specOf(t, u)
			if _, err := dyn.Resource(peersIn(w.via)).Namespace(peerNamespace).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
				t.Fatal(err)
			}
			readBoth(ctx, t, dyn, u.GetName(), want)
		})
	}

	refused := []struct {
		name, spec, message string
	}{
		{name: "dynamicASN", spec: "{myASN: 64512, dynamicASN: external, peerAddress: 10.0.0.9}",
			message: "spec.dynamicASN (learning the router's AS number) is not supported by ecmplb yet"},
		{name: "interface", spec: "{myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.9, interface: eth0}",
			message: "spec.interface (unnumbered BGP) is not supported by ecmplb yet"},
		{name: "vrf", spec: "{myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.9, vrf: red}",
			message: "spec.vrf (peering from a host VRF) is not supported by ecmplb yet"},
	}
	for _, r := range refused {
		for _, v := range []string{"v1beta1", "v1beta2"} {
			t.Run("refused through "+v+": "+r.name, func(t *testing.T) {
				u := peerFromYAML(t, "apiVersion: metallb.io/"+v+"\nkind: BGPPeer\nmetadata: {name: refused}\nspec: "+r.spec+"\n")
				_, err := dyn.Resource(peersIn(v)).Namespace(peerNamespace).Create(ctx, u, metav1.CreateOptions{})
				if err == nil {
					t.Fatal("created; want a refusal")
				}
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), r.message) {
					t.Fatalf("refusal %v, want %q", err, r.message)
				}
			})
		}
	}
}
