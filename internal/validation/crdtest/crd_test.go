package crdtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ecmplb/ecmplb/internal/testenv"
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
	"24-peer-connect-time-below-1s.yaml",
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
}

func load(t *testing.T, path string) (*unstructured.Unstructured, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "# ") {
			break
		}
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), ": "); ok {
			hdr[k] = v
		}
	}
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
		order, err := os.ReadFile(filepath.Join(docsDir, "apply-order.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(order), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch f[0] {
			case "apply":
				u, _ := load(t, filepath.Join(docsDir, f[1]))
				if err := apply(ctx, c, u); err != nil {
					t.Errorf("%s: %v", f[1], err)
				}
			case "delete":
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("metallb.io/v1beta1")
				if f[1] == "BGPPeer" {
					u.SetAPIVersion("metallb.io/v1beta2")
				}
				u.SetKind(f[1])
				u.SetNamespace("metallb-system")
				u.SetName(f[2])
				if err := c.Delete(ctx, u); err != nil {
					t.Errorf("delete %s %s: %v", f[1], f[2], err)
				}
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
