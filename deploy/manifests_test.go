package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

func kubectl(t *testing.T, env *testenv.Env, stdin string, args ...string) (string, error) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins, err := testenv.FindBinaries(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The example manifests (the ones in ../shared/seed-examples, copied to
// examples/) must apply to our CRDs unchanged, in order, as a user would.
func TestExamplesApplyUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{})
	dirs := []string{"examples"}
	if _, err := os.Stat("../../shared/seed-examples"); err == nil {
		dirs = append(dirs, "../../shared/seed-examples")
	}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if len(files) < 5 {
			t.Fatalf("%s: expected the five example manifests, found %d", dir, len(files))
		}
		for _, f := range files {
			if out, err := kubectl(t, env, "", "apply", "-f", f); err != nil {
				t.Fatalf("kubectl apply -f %s: %v\n%s", f, err, out)
			}
		}
	}
	out, err := kubectl(t, env, "", "get", "-n", "metallb-system", "bgppeer", "tor1", "-o", "jsonpath={.spec.peerAddress} {.spec.bfdProfile} {.spec.myASN}")
	if err != nil || out != "10.0.0.1 tor-bfd 65100" {
		t.Fatalf("tor1 after applying the examples = %q (%v), want %q", out, err, "10.0.0.1 tor-bfd 65100")
	}
	out, err = kubectl(t, env, "", "get", "-n", "metallb-system", "ipaddresspool", "prod-pool", "-o", "jsonpath={.spec.autoAssign} {.spec.avoidBuggyIPs}")
	if err != nil || out != "true false" {
		t.Fatalf("prod-pool defaults = %q (%v), want %q", out, err, "true false")
	}
	out, err = kubectl(t, env, "", "get", "-n", "metallb-system", "bgpadvertisement", "prod-adv", "-o", "jsonpath={.spec.aggregationLength} {.spec.aggregationLengthV6} {.spec.communities[0]}")
	if err != nil || out != "32 128 65000:100" {
		t.Fatalf("prod-adv = %q (%v), want %q", out, err, "32 128 65000:100")
	}
}

// Out-of-range values are rejected by the apiserver with the field named.
func TestCRDValidationNamesTheField(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{})
	cases := []struct {
		name, manifest, wantField string
	}{
		{"bfd interval too short", `apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad, namespace: metallb-system}
spec: {receiveInterval: 5}
`, "spec.receiveInterval"},
		{"bfd multiplier too small", `apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad, namespace: metallb-system}
spec: {detectMultiplier: 1}
`, "spec.detectMultiplier"},
		{"aggregation length over 32", `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bad, namespace: metallb-system}
spec: {aggregationLength: 33}
`, "spec.aggregationLength"},
		{"peer without address", `apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: bad, namespace: metallb-system}
spec: {myASN: 65100, peerASN: 65000}
`, "spec.peerAddress"},
		{"pool without addresses", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad, namespace: metallb-system}
spec: {autoAssign: true}
`, "spec.addresses"},
		{"service selectors with aggregation", `apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bad, namespace: metallb-system}
spec: {aggregationLength: 24, serviceSelectors: [{matchLabels: {a: b}}]}
`, "serviceSelectors"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl(t, env, tc.manifest, "apply", "-f", "-")
			if err == nil {
				t.Fatalf("apply succeeded, want rejection naming %s:\n%s", tc.wantField, out)
			}
			if !strings.Contains(out, tc.wantField) {
				t.Fatalf("rejection does not name %s:\n%s", tc.wantField, out)
			}
		})
	}
}
