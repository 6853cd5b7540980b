package crdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/internal/validation"
)

const (
	docsDir = "../../../deploy/examples/metallb-docs"
	badDir  = "../testdata/bad"
)

// celRefused are the bad manifests whose check needs no other object: the
// CRD schema (CEL, bounds, required fields) refuses them on its own.
var celRefused = []string{
	"01-pool-invalid-cidr.yaml",
	"02-pool-invalid-ipv6-cidr.yaml",
	"03-pool-invalid-range.yaml",
	"05-pool-range-mixes-families.yaml",
	"06-pool-empty.yaml",
	"13-peer-missing-my-asn.yaml",
	"14-peer-missing-peer-asn.yaml",
	"16-peer-hold-time-under-3s.yaml",
	"17-peer-keepalive-not-below-hold.yaml",
	"18-peer-password-and-password-secret.yaml",
	"24-peer-connect-time-below-1s.yaml",
	"25-peer-vrf-not-supported.yaml",
	"26-peer-v1beta1-hold-time-under-3s.yaml",
	"27-peer-router-id-not-ipv4.yaml",
	"28-advertisement-community-out-of-range.yaml",
	"29-advertisement-large-community-syntax.yaml",
	"33-advertisement-aggregation-above-32.yaml",
	"34-advertisement-service-selectors-with-aggregation.yaml",
	"38-community-value-not-a-community.yaml",
	"39-community-large-value-syntax.yaml",
	"40-community-duplicate-alias-in-object.yaml",
	"42-bfd-receive-interval-below-10.yaml",
	"43-bfd-transmit-interval-above-60000.yaml",
	"44-bfd-detect-multiplier-below-2.yaml",
	"45-bfd-echo-interval-below-10.yaml",
	"46-bfd-minimum-ttl-above-254.yaml",
	"50-peer-ibgp-multihop.yaml",
}

// peerCases are BGPPeer specs at the edges of the CRD's single-object
// rules. For each, the CRD must give the speaker's verdict
// (validation.BGPPeer): refuse what it refuses, naming the same field, and
// accept what it accepts. Every case has a valid peerAddress (the CRD does
// not check it: the speaker accepts zoned and IPv4-mapped addresses, which
// CEL's isIP refuses).
var peerCases = []struct {
	name  string
	spec  map[string]any
	field string // "" when the speaker accepts
}{
	{"plain", map[string]any{}, ""},
	{"holdTime 0s", map[string]any{"holdTime": "0s"}, "spec.holdTime"},
	{"holdTime 2.999s", map[string]any{"holdTime": "2999ms"}, "spec.holdTime"},
	{"holdTime 3s", map[string]any{"holdTime": "3s"}, ""},
	{"holdTime 65535s", map[string]any{"holdTime": "65535s"}, ""},
	{"holdTime 65536s", map[string]any{"holdTime": "65536s"}, "spec.holdTime"},
	{"holdTime negative", map[string]any{"holdTime": "-5s"}, "spec.holdTime"},
	{"keepalive 0s", map[string]any{"keepaliveTime": "0s"}, "spec.keepaliveTime"},
	{"keepalive below default hold", map[string]any{"keepaliveTime": "89s"}, ""},
	{"keepalive at default hold", map[string]any{"keepaliveTime": "90s"}, "spec.keepaliveTime"},
	{"keepalive below hold", map[string]any{"holdTime": "9s", "keepaliveTime": "8s"}, ""},
	{"keepalive equals hold", map[string]any{"holdTime": "9s", "keepaliveTime": "9s"}, "spec.keepaliveTime"},
	{"keepalive above hold", map[string]any{"holdTime": "9s", "keepaliveTime": "1m"}, "spec.keepaliveTime"},
	{"password", map[string]any{"password": "a"}, ""},
	{"passwordSecret", map[string]any{"passwordSecret": map[string]any{"name": "b"}}, ""},
	{"empty password with passwordSecret", map[string]any{"password": "", "passwordSecret": map[string]any{"name": "b"}}, ""},
	{"password and passwordSecret", map[string]any{"password": "a", "passwordSecret": map[string]any{"name": "b"}}, "spec.passwordSecret"},
	{"eBGP multi-hop", map[string]any{"ebgpMultiHop": true}, ""},
	{"iBGP single-hop", map[string]any{"peerASN": int64(64500)}, ""},
	{"iBGP multi-hop false", map[string]any{"peerASN": int64(64500), "ebgpMultiHop": false}, ""},
	{"iBGP multi-hop", map[string]any{"peerASN": int64(64500), "ebgpMultiHop": true}, "spec.ebgpMultiHop"},
	{"empty vrf", map[string]any{"vrf": ""}, ""},
	{"vrf", map[string]any{"vrf": "red"}, "spec.vrf"},
	{"no peerASN", map[string]any{"peerASN": nil}, "spec.peerASN"},
	{"routerID IPv4", map[string]any{"routerID": "10.1.2.3"}, ""},
	{"empty routerID", map[string]any{"routerID": ""}, ""},
	{"routerID IPv6", map[string]any{"routerID": "2001:db8::1"}, "spec.routerID"},
	{"routerID IPv4-mapped", map[string]any{"routerID": "::ffff:10.1.2.3"}, "spec.routerID"},
	{"routerID leading zero", map[string]any{"routerID": "010.1.2.3"}, "spec.routerID"},
	{"routerID name", map[string]any{"routerID": "router1"}, "spec.routerID"},
}

// peerObject is a BGPPeer of apiVersion version with myASN 64500, peerASN
// 64501, peerAddress 10.0.0.9, changed by mut (a nil value removes a field).
func peerObject(version, name string, mut map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"myASN": int64(64500), "peerASN": int64(64501), "peerAddress": "10.0.0.9"}
	for k, v := range mut {
		if v == nil {
			delete(spec, k)
		} else {
			spec[k] = v
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "metallb.io/" + version,
		"kind":       "BGPPeer",
		"metadata":   map[string]any{"name": name, "namespace": "default"},
		"spec":       spec,
	}}
	return u
}

func load(t *testing.T, path string) (*unstructured.Unstructured, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := testenv.ManifestHeader(data)
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	return u, hdr
}

// apply creates u, or replaces the object of the same kind and name, with
// strict field validation (as kubectl apply).
func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	err := c.Create(ctx, u.DeepCopy(), client.FieldValidation("Strict"))
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(u.GroupVersionKind())
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), cur); err != nil {
		return err
	}
	upd := u.DeepCopy()
	upd.SetResourceVersion(cur.GetResourceVersion())
	return c.Update(ctx, upd, client.FieldValidation("Strict"))
}

func TestCRDs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{}) // installs deploy/crds: fails on a CEL cost error
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("MetalLB docs examples apply", func(t *testing.T) {
		order, err := testenv.ReadApplyOrder(docsDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range order {
			if step.File != "" {
				u, _ := load(t, filepath.Join(docsDir, step.File))
				if err := apply(ctx, c, u); err != nil {
					t.Errorf("%s: %v", step.File, err)
				}
				continue
			}
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("metallb.io/v1beta1")
			if step.Kind == "BGPPeer" {
				u.SetAPIVersion("metallb.io/v1beta2")
			}
			u.SetKind(step.Kind)
			u.SetNamespace("metallb-system")
			u.SetName(step.Name)
			if err := c.Delete(ctx, u); err != nil {
				t.Errorf("delete %s %s: %v", step.Kind, step.Name, err)
			}
		}
	})

	t.Run("unsupported localASN is an unknown field", func(t *testing.T) {
		u, hdr := load(t, filepath.Join(docsDir, "unsupported", "bgppeer-local-asn.yaml"))
		u.SetName("local-asn")
		err := c.Create(ctx, u, client.FieldValidation("Strict"))
		if err == nil || !strings.Contains(err.Error(), `unknown field "spec.localASN"`) {
			t.Fatalf("error %v, want %s", err, hdr["expect"])
		}
	})

	for i, tc := range peerCases {
		for _, version := range []string{"v1beta1", "v1beta2"} {
			t.Run("BGPPeer "+version+" as the speaker: "+tc.name, func(t *testing.T) {
				u := peerObject(version, fmt.Sprintf("case-%s-%d", version, i), tc.spec)
				var p v1beta2.BGPPeer
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
					t.Fatal(err)
				}
				speakerErr := validation.BGPPeer(&p)
				if (speakerErr == nil) != (tc.field == "") || (speakerErr != nil && !strings.Contains(speakerErr.Error(), tc.field)) {
					t.Fatalf("case is stale: speaker says %v, case expects refusal naming %q", speakerErr, tc.field)
				}
				err := c.Create(ctx, u, client.FieldValidation("Strict"))
				switch {
				case tc.field == "" && err != nil:
					t.Fatalf("refused, but the speaker accepts it: %v", err)
				case tc.field != "" && err == nil:
					t.Fatalf("created, but the speaker refuses it: %v", speakerErr)
				case tc.field != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.field+":")):
					t.Fatalf("refusal %v does not name %s", err, tc.field)
				}
				if err != nil {
					t.Log(err)
				}
			})
		}
	}

	for _, name := range celRefused {
		t.Run("refused by the CRD: "+name, func(t *testing.T) {
			u, hdr := load(t, filepath.Join(badDir, name))
			field := hdr["field"]
			if field == "" {
				t.Fatal("no '# field:' header")
			}
			err := c.Create(ctx, u, client.FieldValidation("Strict"))
			if err == nil {
				t.Fatalf("created; want a refusal naming %s", field)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), field) {
				t.Fatalf("refusal %v does not name %s", err, field)
			}
			t.Log(err)
		})
	}
}
