package watch

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/internal/validation"
)

// TestUpgradeFromMetalLB installs the bgppeers CRD as MetalLB v0.16.1 has it,
// writes BGPPeers through v1beta2 (MetalLB's defaults are stored with them),
// replaces the CRDs with ecmplb's and reads the peers through the speaker's
// reader: each one must come back exactly as stored, and the speaker's check
// must accept it or refuse it naming the field ecmplb does not run yet.
func TestUpgradeFromMetalLB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{CRDDir: "../../internal/conversion/testdata/metallb-v0.16.1"})
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "metallb-system"
	gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta2", Resource: "bgppeers"}

	peers := []struct {
		name, spec string
		refused    string // "": the speaker accepts it
	}{
		{name: "plain", spec: "{myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.1}"},
		{name: "full", spec: `{myASN: 4200000000, peerASN: 64513, peerAddress: 10.0.0.2, sourceAddress: 10.0.0.21,
  routerID: 10.0.0.21, peerPort: 1179, holdTime: 9s, keepaliveTime: 3s, connectTime: 2s,
  passwordSecret: {name: bgp, namespace: metallb-system}, bfdProfile: fast, enableGracefulRestart: true,
  ebgpMultiHop: true, nodeSelectors: [{matchLabels: {rack: "1"}, matchExpressions: [{key: zone, operator: In, values: [a]}, {key: edge, operator: Exists}]}]}`},
		{name: "unnumbered", spec: "{myASN: 64512, peerASN: 64513, interface: eth0}", refused: "spec.interface"},
		{name: "dynamic", spec: "{myASN: 64512, dynamicASN: external, peerAddress: 10.0.0.3}", refused: "spec.dynamicASN"},
		{name: "dual-stack", spec: "{myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.4, dualStackAddressFamily: true}"},
		{name: "vrf", spec: "{myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.5, vrf: red}", refused: "spec.vrf"},
	}
	stored := map[string]v1beta2.BGPPeerSpec{}
	for _, p := range peers {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte("apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: "+p.name+"}\nspec: "+p.spec+"\n"), &u.Object); err != nil {
			t.Fatal(err)
		}
		got, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("MetalLB's CRD refused %s: %v", p.name, err)
		}
		b, err := json.Marshal(got.Object["spec"])
		if err != nil {
			t.Fatal(err)
		}
		var s v1beta2.BGPPeerSpec
		if strictErrs, err := kjson.UnmarshalStrict(b, &s, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields); err != nil || len(strictErrs) > 0 {
			t.Fatalf("%s as stored by MetalLB's CRD (%s) does not decode: %v %v", p.name, b, err, strictErrs)
		}
		stored[p.name] = s
	}
	if stored["plain"].Port != 179 {
		t.Fatalf("MetalLB's CRD did not default peerPort: %+v", stored["plain"])
	}

	if err := testenv.InstallCRDs(ctx, env.Config, "../../deploy/crds"); err != nil {
		t.Fatal(err)
	}
	// MetalLB's conversion webhook is not there: v1beta1 reads work only once
	// ecmplb's CRD (None, one JSON form) has replaced MetalLB's.
	if _, err := dyn.Resource(schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "bgppeers"}).
		Namespace(ns).Get(ctx, "full", metav1.GetOptions{}); err != nil {
		t.Errorf("reading through v1beta1 after the upgrade: %v", err)
	}
	c, err := NewMetalLBClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := cache.ToListerWithContext(NewListWatch(c, "bgppeers", ns)).ListWithContext(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list, ok := obj.(*v1beta2.BGPPeerList)
	if !ok {
		t.Fatalf("the speaker's reader returned %T, want *v1beta2.BGPPeerList", obj)
	}
	read := map[string]*v1beta2.BGPPeer{}
	for i := range list.Items {
		read[list.Items[i].Name] = &list.Items[i]
	}
	for _, p := range peers {
		got, ok := read[p.name]
		if !ok {
			t.Errorf("%s: not read back", p.name)
			continue
		}
		if !reflect.DeepEqual(got.Spec, stored[p.name]) {
			t.Errorf("%s read after the upgrade:\n got %+v\nwant %+v", p.name, got.Spec, stored[p.name])
		}
		err := validation.BGPPeer(got)
		switch {
		case p.refused == "" && err != nil:
			t.Errorf("%s: speaker refuses it: %v", p.name, err)
		case p.refused != "" && (err == nil || !strings.Contains(err.Error(), p.refused)):
			t.Errorf("%s: speaker's check says %v, want a refusal naming %s", p.name, err, p.refused)
		}
	}
	if len(read) != len(peers) {
		t.Errorf("read %d peers, want %d", len(read), len(peers))
	}
}
