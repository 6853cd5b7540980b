package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/internal/validation"
	"github.com/ecmplb/ecmplb/speaker/watch"
)

// metallbCRDs is the bgppeers CRD as a MetalLB v0.16.1 installation has it
// (v1beta2 stored, v1beta1 served, conversion by MetalLB's webhook).
const metallbCRDs = "../internal/conversion/testdata/metallb-v0.16.1"

// The README's "Migrating from MetalLB", played against the real apiserver
// with kubectl as a user would, and the real controller binary. It starts
// from what a MetalLB v0.16.1 installation leaves once its workloads are
// gone: its CRDs, its configuration, a Service holding an IP MetalLB's
// controller gave it, and MetalLB's ValidatingWebhookConfiguration. After the
// takeover every object must read back unchanged (BGPPeers through v1beta2
// and, via ecmplb's conversion webhook, v1beta1), the Service must keep its
// IP, the configuration must be Valid, and a bad object must be refused.
func TestMigrationFromMetalLB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	// testenv creates MetalLB's bgppeers and servicebgpstatuses CRDs as Helm
	// installs CRDs: a plain create by another field manager than kubectl,
	// no last-applied annotation. MetalLB's servicebgpstatuses is ecmplb's
	// with a status subresource.
	helmCRDs := t.TempDir()
	peersCRD, err := os.ReadFile(filepath.Join(metallbCRDs, "metallb.io_bgppeers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	statusCRD, err := testenv.MetalLBServiceBGPStatusCRD()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"metallb.io_bgppeers.yaml": peersCRD, "metallb.io_servicebgpstatuses.yaml": statusCRD} {
		if err := os.WriteFile(filepath.Join(helmCRDs, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := testenv.Start(t, testenv.Options{CRDDir: helmCRDs})
	ctx := context.Background()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := kubectl(t, env, stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	const ns = "metallb-system"

	t.Log("state left by MetalLB v0.16.1: its CRDs, its configuration, a Service with an IP; its workloads gone")
	// The other CRDs as `kubectl apply -f metallb-native.yaml` leaves them
	// (client-side apply: a last-applied annotation). For these kinds
	// ecmplb's CRDs are schema-compatible with MetalLB v0.16.1's (same
	// versions, fields and defaults; ecmplb adds validation rules only), so
	// they stand in for MetalLB's here. Only bgppeers differs in what matters
	// to the takeover: its conversion webhook.
	crds, err := filepath.Glob("crds/*.yaml")
	if err != nil || len(crds) < 7 {
		t.Fatalf("deploy/crds: %v %v", crds, err)
	}
	for _, f := range crds {
		if b := filepath.Base(f); b != "metallb.io_bgppeers.yaml" && b != "metallb.io_servicebgpstatuses.yaml" {
			run("", "apply", "-f", f)
		}
	}
	// MetalLB's controller writes its CA into the conversion webhook of the
	// bgppeers CRD (an update by field manager "controller").
	metallbCA := base64.StdEncoding.EncodeToString(selfSignedCA(t, "metallb-webhook-service.metallb-system.svc"))
	run("", "patch", "crd", "bgppeers.metallb.io", "--type=merge", "--field-manager=controller",
		"-p", `{"spec":{"conversion":{"webhook":{"clientConfig":{"caBundle":"`+metallbCA+`"}}}}}`)
	// The configuration as the user applied it (peers through v1beta2: no
	// conversion is needed to store them, so MetalLB's absent webhook is not
	// called).
	run("", "apply", "-f", "testdata/migration/01-metallb-config.yaml")
	// The Service and what MetalLB's controller wrote on it.
	const ip = "203.0.113.7" // not the pool's first address: a reallocation would show
	run("", "apply", "-f", "testdata/migration/02-service.yaml")
	run("", "annotate", "-n", "default", "service", "web", "--field-manager=controller",
		"metallb.io/ip-allocated-from-pool=prod-pool")
	run("", "patch", "-n", "default", "service", "web", "--subresource=status", "--type=merge", "--field-manager=controller",
		"-p", `{"status":{"loadBalancer":{"ingress":[{"ip":"`+ip+`"}]}}}`)
	// MetalLB's admission webhooks, registered last (they admitted the above
	// while MetalLB ran). MetalLB's controller and speaker cannot run here
	// (no kubelet, and their images are not ours to pull); this is the state
	// once they are deleted.
	run("", "apply", "-f", "testdata/migration/metallb-webhook.yaml")

	// What every object is before the migration: its spec and resourceVersion
	// (the pool's status will change; its spec must not).
	type ref struct{ resource, name string }
	objects := []ref{
		{"ipaddresspools.v1beta1.metallb.io", "prod-pool"},
		{"bfdprofiles.v1beta1.metallb.io", "tor-bfd"},
		{"bgppeers.v1beta2.metallb.io", "tor1"},
		{"bgppeers.v1beta2.metallb.io", "tor2"},
		{"bgpadvertisements.v1beta1.metallb.io", "prod-adv"},
	}
	type state struct {
		Spec     map[string]any `json:"spec"`
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	read := func(resource, name string) state {
		t.Helper()
		var s state
		out := run("", "get", "-n", ns, resource, name, "-o", "json")
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%s/%s: %v\n%s", resource, name, err, out)
		}
		return s
	}
	before := map[ref]state{}
	for _, o := range objects {
		before[o] = read(o.resource, o.name)
	}
	if port := before[ref{"bgppeers.v1beta2.metallb.io", "tor2"}].Spec["peerPort"]; port != float64(179) {
		t.Fatalf("MetalLB's CRD did not store its peerPort default: %v", port)
	}

	t.Log("step 0: back up the configuration")
	backup := run("", "get", "-n", ns, "ipaddresspools,bgppeers,bgpadvertisements,bfdprofiles,communities,l2advertisements", "-o", "yaml")
	for _, o := range objects {
		if !strings.Contains(backup, "name: "+o.name+"\n") {
			t.Fatalf("the backup lacks %s:\n%s", o.name, backup)
		}
	}
	svcBefore := run("", "get", "-n", "default", "service", "web", "-o", "jsonpath={.metadata.resourceVersion}")

	t.Log("step 1: delete MetalLB's workloads and its ValidatingWebhookConfiguration, keep its CRDs and objects")
	// (Its Deployment and DaemonSet never ran here; the webhook configuration
	// is what would otherwise refuse every write of the configuration.)
	if out, err := kubectl(t, env, probePool, "apply", "--dry-run=server", "-f", "-"); err == nil {
		t.Fatalf("MetalLB's webhook configuration, left behind, should refuse writes (failurePolicy Fail):\n%s", out)
	} else {
		t.Logf("while MetalLB's webhook configuration is left: %s", firstLine(out))
	}
	run("", "delete", "validatingwebhookconfiguration", "metallb-webhook-configuration")

	t.Log("step 2: kubectl apply --server-side --force-conflicts -f deploy/ecmplb.yaml")
	// Without --force-conflicts the takeover stops at the fields another
	// field manager (Helm, here testenv) owns and ecmplb.yaml changes.
	out, err := kubectl(t, env, "", "apply", "--server-side", "-f", "ecmplb.yaml")
	if err == nil {
		t.Fatalf("apply --server-side without --force-conflicts took the CRDs over; the README's flag is not needed:\n%s", out)
	}
	// The conflict is on the CRD installed Helm's way, at the fields ecmplb
	// changes; the CRDs applied client-side by kubectl are taken over without
	// one (the apiserver lets manager "kubectl" override what the
	// last-applied annotation records).
	if strings.Count(out, "Apply failed with") != 2 || !strings.Contains(out, ".spec.conversion.webhook.clientConfig.service.name") ||
		!strings.Contains(out, "Apply failed with 1 conflict: conflict with \"deploy.test\" using apiextensions.k8s.io/v1: .spec.versions") ||
		!strings.Contains(out, "ipaddresspools.metallb.io serverside-applied") {
		t.Fatalf("apply --server-side without --force-conflicts: want exactly the bgppeers CRD to conflict (its versions and conversion webhook) and the servicebgpstatuses CRD (its versions):\n%s", out)
	}
	t.Logf("without --force-conflicts:\n%s", conflictLines(out))
	run("", "apply", "--server-side", "--force-conflicts", "-f", "ecmplb.yaml")
	var conv struct {
		Service  map[string]any `json:"service"`
		CABundle string         `json:"caBundle"`
	}
	if err := json.Unmarshal([]byte(run("", "get", "crd", "bgppeers.metallb.io", "-o", "jsonpath={.spec.conversion.webhook.clientConfig}")), &conv); err != nil {
		t.Fatal(err)
	}
	if conv.Service["name"] != "ecmplb-webhook" {
		t.Fatalf("bgppeers CRD converts through %v after the takeover, want ecmplb-webhook", conv.Service)
	}
	// ecmplb.yaml sets no caBundle, so MetalLB's CA stays (its field manager
	// keeps it) until ecmplb's controller writes its own (checked below).
	if conv.CABundle != metallbCA {
		t.Errorf("the takeover changed the bgppeers CRD's caBundle; the README says MetalLB's stays until the controller writes ecmplb's")
	}
	t.Logf("bgppeers conversion webhook after the takeover: service %v, MetalLB's caBundle kept", conv.Service)
	// The takeover of servicebgpstatuses' versions drops MetalLB's status
	// subresource: the speakers write each object in one request.
	if got := run("", "get", "crd", "servicebgpstatuses.metallb.io", "-o", "jsonpath={.spec.versions[0].subresources}"); got != "{}" {
		t.Errorf("servicebgpstatuses subresources after the takeover: %s, want {} (ecmplb's CRD has no status subresource)", got)
	}

	// This apiserver cannot reach Services: the webhooks get a url
	// clientConfig to the controller on loopback (testenv.InstallWebhooks),
	// which serves them with --webhook-extra-dns-names=localhost. The
	// controller runs with the Deployment's arguments but for addresses.
	whArgs := serveWebhooks(t, env)
	hp, err := testenv.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	health := fmt.Sprintf("127.0.0.1:%d", hp)
	ctrl := startBinary(t, "./controller", append([]string{"--kubeconfig", env.Kubeconfig,
		"--namespace", ns, "--leader-elect=true", "--metrics-addr", "0", "--health-addr", health}, whArgs...)...)

	t.Log("step 3: kubectl -n metallb-system rollout status deploy/ecmplb-controller (here: its /readyz)")
	var last string
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("controller not ready: %s\n%s", last, ctrl.Tail(50))
	}
	waitWebhooks(t, env, func() string { return ctrl.Tail(50) })

	t.Log("step 4: check — the Service keeps its IP, the configuration is Valid, the objects are unchanged")
	// The controller has taken the Service into account once the pool's
	// status counts its address; it must be the one MetalLB gave.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		out, err := kubectl(t, env, "", "get", "-n", ns, "ipaddresspools.v1beta1.metallb.io", "prod-pool", "-o", "jsonpath={.status.assignedIPv4}")
		last = out
		return err == nil && out == "1", nil
	}); err != nil {
		t.Fatalf("pool status assignedIPv4 = %q, want 1\n%s", last, ctrl.Tail(50))
	}
	got := run("", "get", "-n", "default", "service", "web", "-o",
		`jsonpath={.status.loadBalancer.ingress[*].ip} {.metadata.annotations.metallb\.io/ip-allocated-from-pool}`)
	if got != ip+" prod-pool" {
		t.Fatalf("Service web after the migration: %q, want %q (no reallocation)\n%s", got, ip+" prod-pool", ctrl.Tail(50))
	}
	if rv := run("", "get", "-n", "default", "service", "web", "-o", "jsonpath={.metadata.resourceVersion}"); rv != svcBefore {
		t.Errorf("Service web was written during the migration (resourceVersion %s → %s)", svcBefore, rv)
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		out, err := kubectl(t, env, "", "get", "-n", ns, "configurationstates.v1beta1.metallb.io", "controller",
			"-o", "jsonpath={.status.result} {.status.errorSummary}")
		last = out
		return err == nil && out == "Valid ", nil
	}); err != nil {
		t.Fatalf(`ConfigurationState "controller" = %q, want Valid`, last)
	}
	// ecmplb's controller replaced MetalLB's CA in the bgppeers CRD by its own.
	ca := run("", "get", "-n", ns, "secret", "ecmplb-webhook-cert", "-o", "jsonpath={.data.ca\\.crt}")
	if b := run("", "get", "crd", "bgppeers.metallb.io", "-o", "jsonpath={.spec.conversion.webhook.clientConfig.caBundle}"); ca == "" || b != ca {
		t.Fatalf("bgppeers CRD caBundle is not ecmplb's CA")
	}
	for _, o := range objects {
		after := read(o.resource, o.name)
		if !reflect.DeepEqual(after.Spec, before[o].Spec) {
			t.Errorf("%s/%s changed by the migration:\n got %v\nwant %v", o.resource, o.name, after.Spec, before[o].Spec)
		}
		if o.name != "prod-pool" && after.Metadata.ResourceVersion != before[o].Metadata.ResourceVersion {
			t.Errorf("%s/%s was written during the migration (resourceVersion %s → %s)", o.resource, o.name,
				before[o].Metadata.ResourceVersion, after.Metadata.ResourceVersion)
		}
	}
	// The peers through v1beta1: converted by ecmplb's webhook now. Same
	// fields and values, but for the v1beta2-only fields MetalLB's CRD
	// stored defaults for, and durations, which conversion writes in Go's
	// form (90s reads 1m30s, as through MetalLB's webhook).
	for _, name := range []string{"tor1", "tor2"} {
		v1 := read("bgppeers.v1beta1.metallb.io", name)
		want := maps.Clone(before[ref{"bgppeers.v1beta2.metallb.io", name}].Spec)
		delete(want, "disableMP")
		delete(want, "dualStackAddressFamily")
		for k, v := range want {
			if d, err := time.ParseDuration(fmt.Sprint(v)); err == nil && strings.HasSuffix(k, "Time") {
				want[k] = d.String()
			}
		}
		if !reflect.DeepEqual(v1.Spec, want) {
			t.Errorf("bgppeer %s through v1beta1:\n got %v\nwant %v", name, v1.Spec, want)
		}
	}
	// The speaker's reader (speaker/watch, which reads v1beta2) gets the
	// peers as stored, and the speaker's check accepts them.
	c, err := watch.NewMetalLBClient(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := cache.ToListerWithContext(watch.NewListWatch(c, "bgppeers", ns)).ListWithContext(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	peers, ok := obj.(*v1beta2.BGPPeerList)
	if !ok || len(peers.Items) != 2 {
		t.Fatalf("the speaker's reader returned %T %v, want the two peers", obj, obj)
	}
	for i := range peers.Items {
		p := &peers.Items[i]
		if p.Spec.Address != before[ref{"bgppeers.v1beta2.metallb.io", p.Name}].Spec["peerAddress"] || p.Spec.BFDProfile != "tor-bfd" {
			t.Errorf("speaker reads %s as %+v", p.Name, p.Spec)
		}
		if err := validation.BGPPeer(p); err != nil {
			t.Errorf("the speaker refuses %s: %v", p.Name, err)
		}
	}

	t.Log("step 5: a further bad object is refused by kubectl, naming the field")
	ms, err := testenv.ReadRefusedManifests("testdata/migration/bad")
	if err != nil || len(ms) != 1 {
		t.Fatalf("refused manifests: %v %v", ms, err)
	}
	env.CheckRefused(t, ms)
	if got := run("", "get", "-n", "default", "service", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"); got != ip {
		t.Fatalf("Service web at the end: %q, want %q", got, ip)
	}
}

// selfSignedCA is a CA certificate in PEM, as MetalLB's cert-rotator makes.
func selfSignedCA(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// conflictLines keeps kubectl's conflict report, without its advice.
func conflictLines(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "conflict") || strings.HasPrefix(strings.TrimSpace(l), "- ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
