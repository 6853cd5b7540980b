package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

// serveWebhooks points the webhooks of ecmplb.yaml (applied before) at
// https://localhost:PORT, which this apiserver can reach, and returns the
// controller flags that serve them there.
func serveWebhooks(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	port, err := testenv.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.InstallWebhooksFromFile(context.Background(), env.Config, "ecmplb.yaml", fmt.Sprintf("https://localhost:%d", port)); err != nil {
		t.Fatal(err)
	}
	return []string{fmt.Sprintf("--webhook-addr=127.0.0.1:%d", port), "--webhook-cert-dir=" + t.TempDir(), "--webhook-extra-dns-names=localhost"}
}

// probePool is a pool applied with a server-side dry run: it reaches the
// webhook and changes nothing.
const probePool = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: webhook-probe, namespace: metallb-system}
spec: {addresses: [192.0.2.240/29]}
`

// waitWebhooks waits until the apiserver gets answers from the webhooks
// (a dry-run apply passes), or fails the test with the controller's log.
func waitWebhooks(t *testing.T, env *testenv.Env, ctrlLog func() string) {
	t.Helper()
	var out string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		var err error
		out, err = kubectl(t, env, probePool, "apply", "--dry-run=server", "-f", "-")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("webhooks not answering: %s\n%s", out, ctrlLog())
	}
}

// docs splits a multi-document YAML file into kind and name per document.
func docs(t *testing.T, path string) []struct{ Kind, Name string } {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []struct{ Kind, Name string }
	for _, d := range bytes.Split(data, []byte("\n---")) {
		var h struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(d, &h); err != nil || h.Kind == "" {
			continue
		}
		out = append(out, struct{ Kind, Name string }{h.Kind, h.Metadata.Name})
	}
	return out
}

// The order of ecmplb.yaml (Helm's install order) is the documented one:
// CRDs, namespace and RBAC, then the certificate Secret and the webhook
// Service before the controller's Deployment, and the
// ValidatingWebhookConfiguration last. (TestRBACIsLeast applies the file to
// a fresh apiserver in one go and shows it succeeds.)
func TestInstallOrder(t *testing.T) {
	ds := docs(t, "ecmplb.yaml")
	first := func(kind, name string) int {
		return slices.IndexFunc(ds, func(d struct{ Kind, Name string }) bool {
			return d.Kind == kind && (name == "" || d.Name == name)
		})
	}
	last := func(kind string) int {
		i := -1
		for j, d := range ds {
			if d.Kind == kind {
				i = j
			}
		}
		return i
	}
	secret, svc := first("Secret", "ecmplb-webhook-cert"), first("Service", "ecmplb-webhook")
	deploy, vwc := first("Deployment", "ecmplb-controller"), first("ValidatingWebhookConfiguration", "ecmplb-webhook")
	for _, tc := range []struct {
		what        string
		before, aft int
	}{
		{"namespace before the Secret", first("Namespace", ""), secret},
		{"CRDs before the Deployment", last("CustomResourceDefinition"), deploy},
		{"RBAC before the Deployment", last("RoleBinding"), deploy},
		{"Secret before the Deployment", secret, deploy},
		{"Service before the Deployment", svc, deploy},
		{"Deployment before the ValidatingWebhookConfiguration", deploy, vwc},
	} {
		if tc.before < 0 || tc.aft < 0 || tc.before >= tc.aft {
			t.Errorf("%s: positions %d, %d", tc.what, tc.before, tc.aft)
		}
	}
	if vwc != len(ds)-1 {
		t.Errorf("the ValidatingWebhookConfiguration is document %d of %d, want last", vwc, len(ds))
	}
}

// The webhook's RBAC names its objects: the certificate Secret, the
// ValidatingWebhookConfiguration and the bgppeers CRD are granted with
// resourceNames, and nothing else is updated on those resources.
func TestWebhookRBACNamesItsObjects(t *testing.T) {
	data, err := os.ReadFile("ecmplb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/secrets": "ecmplb-webhook-cert",
		"admissionregistration.k8s.io/validatingwebhookconfigurations": "ecmplb-webhook",
		"apiextensions.k8s.io/customresourcedefinitions":               "bgppeers.metallb.io",
	}
	seen := map[string]bool{}
	for _, d := range bytes.Split(data, []byte("\n---")) {
		var role rbacv1.ClusterRole // Role has the same shape
		if err := yaml.Unmarshal(d, &role); err != nil || (role.Kind != "ClusterRole" && role.Kind != "Role") || role.Name != "ecmplb-controller" {
			continue
		}
		for _, r := range role.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					name, ok := want[g+"/"+res]
					if !ok {
						continue
					}
					writes := slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" })
					if g == "" && !writes {
						continue // get on Secrets: the password Secret a peer names
					}
					if !slices.Equal(r.ResourceNames, []string{name}) {
						t.Errorf("%s grants %v on %s without resourceNames [%s]: %v", role.Name, r.Verbs, g+"/"+res, name, r.ResourceNames)
					}
					seen[g+"/"+res] = true
				}
			}
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("no rule for %s", k)
		}
	}
	if !strings.Contains(string(data), "failurePolicy: Fail") {
		t.Error("webhooks do not fail closed")
	}
}
