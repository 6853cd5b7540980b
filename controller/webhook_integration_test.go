package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/app"
	"github.com/ecmplb/ecmplb/controller/webhook"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

// webhookReplica runs a controller whose webhooks the apiserver calls at
// https://localhost:PORT, as ecmplb.yaml configures them but for the url
// clientConfig (this apiserver cannot reach Services). The Lease is held
// by someone else for the whole test: the replica never leads, so what
// follows also shows that webhooks do not wait for leadership.
func webhookReplica(t *testing.T, h *harness, wo webhook.Options, wrap ...func(http.RoundTripper) http.RoundTripper) (port int, health string, setup testenv.WebhookSetup) {
	t.Helper()
	cfg := rest.CopyConfig(h.env.Config)
	for _, w := range wrap {
		cfg.Wrap(w)
	}
	ctx := context.Background()
	now := metav1.NewMicroTime(time.Now())
	if _, err := h.cs.CoordinationV1().Leases(poolNS).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "ecmplb-controller"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("elsewhere"), LeaseDurationSeconds: ptr[int32](3600),
			AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	port, err := testenv.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	setup, err = testenv.InstallWebhooksFromFile(ctx, h.env.Config, "../deploy/ecmplb.yaml", fmt.Sprintf("https://localhost:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	hp, err := testenv.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	health = fmt.Sprintf("127.0.0.1:%d", hp)
	wo.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	wo.CertDir = t.TempDir()
	wo.SecretName, wo.ServiceName = setup.SecretName, "ecmplb-webhook"
	wo.ValidatingWebhookConfiguration, wo.ConversionCRD = setup.Configuration, setup.ConversionCRD
	wo.ExtraDNSNames = []string{"localhost"}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(cctx, cfg, app.Config{
			Namespace: poolNS, MetricsAddr: "0", HealthAddr: health, LeaderElect: true,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond,
			Workers: 2, ConfigurationState: true, SkipNameValidation: true, Registry: prometheus.NewRegistry(),
			Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Webhook: wo,
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controller: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("controller did not stop")
		}
	})
	return port, health, setup
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// servedCert is the leaf certificate the webhook server presents.
func servedCert(port int) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
		&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}) //nolint:gosec // we read the certificate, nothing else
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// isP256 says why a PEM private key is not an ECDSA P-256 key (nil if it is).
func isP256(data []byte) error {
	b, _ := pem.Decode(data)
	if b == nil {
		return fmt.Errorf("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return fmt.Errorf("%s block: %v", b.Type, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return fmt.Errorf("a %T, want an ECDSA P-256 key", k)
	}
	return nil
}

func validPool(name string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: name},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/28"}}}
}

// The webhooks against the real apiserver: the controller fills the
// certificate Secret, writes its CA into the webhook configuration and the
// bgppeers CRD, admits a valid pool, refuses a bad one at create naming the
// field, converts BGPPeers between versions, and renews its certificate
// before expiry without an admission failing meanwhile.
func TestWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	h := newHarness(t)
	ctx := context.Background()
	// A serving certificate of 30 s renewed 20 s before expiry: one renewal
	// every ~10 s.
	const validity, lookahead = 30 * time.Second, 20 * time.Second
	// The replica's updates of the CRD and the webhook configuration.
	var caWrites atomic.Int64
	// Its writes of the certificate Secret, and those the apiserver refused.
	var secretWrites, secretRefused atomic.Int64
	countWrites := func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPut && (strings.Contains(r.URL.Path, "/customresourcedefinitions/") ||
				strings.Contains(r.URL.Path, "/validatingwebhookconfigurations/")) {
				caWrites.Add(1)
			}
			secret := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/secrets/")
			if secret && secretWrites.Load() == 0 {
				// The first write late: whatever else reads the empty
				// Secret meanwhile and acts on it does so.
				time.Sleep(500 * time.Millisecond)
			}
			resp, err := rt.RoundTrip(r)
			if secret {
				secretWrites.Add(1)
				if err != nil || resp.StatusCode >= 300 {
					secretRefused.Add(1)
				}
			}
			return resp, err
		})
	}
	port, health, setup := webhookReplica(t, h, webhook.Options{CertValidity: validity, Lookahead: lookahead, CheckInterval: time.Hour}, countWrites)

	t.Run("ready only once the certificate is served and trusted", func(t *testing.T) {
		waitFor(t, 30*time.Second, "/readyz", func() (bool, string) {
			resp, err := http.Get("http://" + health + "/readyz?verbose")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK, string(body)
		})
		// Ready: the certificate is served and the configuration trusts its CA.
		if _, err := servedCert(port); err != nil {
			t.Fatalf("ready, but no certificate served: %v", err)
		}
		vwc, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, setup.Configuration, metav1.GetOptions{})
		if err != nil || len(vwc.Webhooks[0].ClientConfig.CABundle) == 0 {
			t.Fatalf("ready, but no caBundle: %v", err)
		}
	})
	var ca []byte
	t.Run("secret holds a CA and a certificate", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the certificate Secret", func() (bool, string) {
			sec, err := h.cs.CoreV1().Secrets(setup.SecretNamespace).Get(ctx, setup.SecretName, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
				if len(sec.Data[k]) == 0 {
					return false, "no " + k
				}
			}
			ca = sec.Data["ca.crt"]
			return true, ""
		})
		crt, err := parseCert(ca)
		if err != nil || !crt.IsCA {
			t.Fatalf("ca.crt: %v %+v", err, crt)
		}
		// ECDSA P-256 keys: an RSA 2048 key pair is a random search for
		// primes, 0.1-0.5 s of CPU each, and a first start made two (half
		// the controller's CPU in a backlog of 1,000 Services).
		sec, err := h.cs.CoreV1().Secrets(setup.SecretNamespace).Get(ctx, setup.SecretName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ca.key", "tls.key"} {
			if err := isP256(sec.Data[k]); err != nil {
				t.Errorf("%s: %v", k, err)
			}
		}
	})
	t.Run("CA written into the configuration and the CRD", func(t *testing.T) {
		ext := apiextensionsclient.NewForConfigOrDie(h.env.Config)
		waitFor(t, 30*time.Second, "caBundles", func() (bool, string) {
			vwc, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, setup.Configuration, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if len(vwc.Webhooks) < 7 {
				return false, fmt.Sprintf("%d webhooks", len(vwc.Webhooks))
			}
			for _, w := range vwc.Webhooks {
				if !bytes.Equal(w.ClientConfig.CABundle, ca) {
					return false, w.Name + " has another caBundle"
				}
			}
			crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "bgppeers.metallb.io", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if c := crd.Spec.Conversion; c == nil || c.Webhook == nil || !bytes.Equal(c.Webhook.ClientConfig.CABundle, ca) {
				return false, "CRD conversion caBundle not the CA"
			}
			return true, ""
		})
	})
	t.Run("a caBundle wiped is written back", func(t *testing.T) {
		// As a chart upgrade that re-applies the configuration does: the
		// change is seen (a watch), not left until the next hourly check.
		vwc, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, setup.Configuration, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vwc.Webhooks[0].ClientConfig.CABundle = nil
		if _, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Update(ctx, vwc, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the caBundle written back", func() (bool, string) {
			vwc, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, setup.Configuration, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, ca), "caBundle still empty"
		})
	})
	t.Run("valid pool admitted", func(t *testing.T) {
		waitFor(t, 30*time.Second, "the valid pool to be admitted", func() (bool, string) {
			err := h.c.Create(ctx, validPool("good"))
			return err == nil, fmt.Sprint(err)
		})
	})
	t.Run("bad pool refused naming the field", func(t *testing.T) {
		// A CIDR no CRD rule can judge alone: it overlaps "good" (the
		// schema's own rules hold while the webhook is down and are covered
		// by the table below).
		bad := validPool("overlap")
		bad.Spec.Addresses = []string{"192.0.2.0/28", "198.51.100.8/29"}
		err := h.c.Create(ctx, bad)
		want := `admission webhook "v1beta1.ipaddresspools.validate.ecmplb.io" denied the request: IPAddressPool metallb-system/overlap: spec.addresses[1]: `
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("create = %v, want a webhook denial containing %q", err, want)
		}
		if err := h.c.Delete(ctx, validPool("good")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("other namespace refused", func(t *testing.T) {
		p := validPool("elsewhere")
		p.Namespace = "default"
		p.Spec.Addresses = []string{"192.0.2.0/28"}
		err := h.c.Create(ctx, p)
		if err == nil || !strings.Contains(err.Error(), "ecmplb reads metallb.io objects only in namespace metallb-system") {
			t.Fatalf("create in default = %v", err)
		}
	})
	t.Run("BGPPeer v1beta1 read as v1beta2", func(t *testing.T) {
		dyn := dynamic.NewForConfigOrDie(h.env.Config)
		gvr := func(v string) schema.GroupVersionResource {
			return schema.GroupVersionResource{Group: "metallb.io", Version: v, Resource: "bgppeers"}
		}
		in := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "metallb.io/v1beta1", "kind": "BGPPeer",
			"metadata": map[string]any{"name": "tor", "namespace": poolNS},
			"spec": map[string]any{"myASN": int64(65100), "peerASN": int64(65000), "peerAddress": "10.0.0.1",
				"holdTime": "9s", "bfdProfile": "fast"},
		}}
		if _, err := dyn.Resource(gvr("v1beta1")).Namespace(poolNS).Create(ctx, in, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create v1beta1: %v", err)
		}
		out, err := dyn.Resource(gvr("v1beta2")).Namespace(poolNS).Get(ctx, "tor", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get v1beta2: %v", err)
		}
		addr, _, _ := unstructured.NestedString(out.Object, "spec", "peerAddress")
		asn, _, _ := unstructured.NestedInt64(out.Object, "spec", "peerASN")
		bfd, _, _ := unstructured.NestedString(out.Object, "spec", "bfdProfile")
		if out.GetAPIVersion() != "metallb.io/v1beta2" || addr != "10.0.0.1" || asn != 65000 || bfd != "fast" {
			t.Fatalf("v1beta2 view = %v", out.Object)
		}
		if err := dyn.Resource(gvr("v1beta2")).Namespace(poolNS).Delete(ctx, "tor", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("certificate renewed before expiry, admission uninterrupted", func(t *testing.T) {
		first, err := servedCert(port)
		if err != nil {
			t.Fatal(err)
		}
		// Admissions (server-side dry runs) keep going until a second
		// certificate is served, and a little after.
		deadline := time.Now().Add(validity + 10*time.Second)
		var second *x509.Certificate
		after := 0
		for n := 0; after < 10; n++ {
			if time.Now().After(deadline) {
				t.Fatalf("no new certificate served within %s (first expires %s)", validity+10*time.Second, first.NotAfter)
			}
			if err := h.c.Create(ctx, validPool(fmt.Sprintf("dry-%d", n)), client.DryRunAll); err != nil {
				t.Fatalf("admission %d failed (first certificate expires %s): %v", n, first.NotAfter, err)
			}
			cur, err := servedCert(port)
			if err != nil {
				t.Fatalf("TLS to the webhook: %v", err)
			}
			if second == nil && !cur.Equal(first) {
				second = cur
				if !time.Now().Before(first.NotAfter) {
					t.Fatalf("renewed at %s, after the first certificate expired (%s)", time.Now(), first.NotAfter)
				}
			}
			if second != nil {
				after++
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !second.NotAfter.After(first.NotAfter) {
			t.Fatalf("new certificate expires %s, not after the old one (%s)", second.NotAfter, first.NotAfter)
		}
		if err := second.VerifyHostname("localhost"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("renewals under the same CA write neither the CRD nor the configuration", func(t *testing.T) {
		// The rotator reads the caBundles after every renewal of the
		// serving certificate; they already hold the CA. Two renewals: the
		// pass after the first has surely run by the second.
		before := caWrites.Load()
		cur, err := servedCert(port)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			waitFor(t, validity+10*time.Second, fmt.Sprintf("renewal %d", i+1), func() (bool, string) {
				c, err := servedCert(port)
				if err != nil {
					return false, err.Error()
				}
				if c.Equal(cur) {
					return false, "same certificate"
				}
				cur = c
				return true, ""
			})
		}
		if n := caWrites.Load() - before; n != 0 {
			t.Fatalf("%d updates of the CRD or the webhook configuration across two renewals, want none (their caBundles already held the CA)", n)
		}
	})
	t.Run("one writer of the certificate Secret", func(t *testing.T) {
		// The empty Secret at the first start, and each renewal, is filled
		// by one write: not one by the rotator's start (or its ticker) and
		// another by its Secret reconcile, each with its own new keys, the
		// second refused on a conflict. (The first write is held back
		// 500 ms, so whatever else acts on the empty Secret does.)
		if n, refused := secretWrites.Load(), secretRefused.Load(); refused != 0 {
			t.Errorf("%d of the %d writes of the certificate Secret were refused", refused, n)
		}
	})
	t.Run("bad manifests refused naming the field", func(t *testing.T) {
		ms, err := testenv.ReadRefusedManifests("../internal/validation/testdata/bad")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) < 30 {
			t.Fatalf("only %d bad manifests", len(ms))
		}
		h.env.CheckRefused(t, ms, "../deploy/examples/metallb-docs", "../internal/validation/testdata/needs")
	})
	t.Run("MetalLB's documented examples apply unchanged", func(t *testing.T) {
		applyDocsExamples(t, h.env, "../deploy/examples/metallb-docs")
	})
}

// applyDocsExamples plays dir's apply-order.txt with kubectl, as a user
// would, the webhooks running: every example must be accepted. What it
// created is deleted afterwards.
func applyDocsExamples(t *testing.T, env *testenv.Env, dir string) {
	t.Helper()
	order, err := testenv.ReadApplyOrder(dir)
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	t.Cleanup(func() {
		for i := len(applied) - 1; i >= 0; i-- {
			if out, err := env.Kubectl("", "delete", "--ignore-not-found", "-f", applied[i]); err != nil {
				t.Errorf("cleanup: %v\n%s", err, out)
			}
		}
	})
	n := 0
	for _, step := range order {
		if step.File == "" {
			if out, err := env.Kubectl("", "-n", "metallb-system", "delete", strings.ToLower(step.Kind)+".metallb.io", step.Name); err != nil {
				t.Errorf("kubectl delete %s %s: %v\n%s", step.Kind, step.Name, err, out)
			}
			continue
		}
		p := dir + "/" + step.File
		if out, err := env.Kubectl("", "apply", "-f", p); err != nil {
			t.Errorf("kubectl apply -f %s refused: %v\n%s", step.File, err, out)
			continue
		}
		applied = append(applied, p)
		n++
	}
	if n < 30 {
		t.Errorf("applied %d examples, want every one of at least 30", n)
	}
}

// Two replicas starting together on an empty Secret agree on one CA: both
// serve a certificate that the CA in the Secret (the one written into the
// webhook configuration) verifies for the configured name.
func TestWebhooksTwoReplicasOneCA(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	h := newHarness(t)
	ctx := context.Background()
	portA, _, setup := webhookReplica(t, h, webhook.Options{})
	portB, _, _ := webhookReplica(t, h, webhook.Options{})
	waitFor(t, 60*time.Second, "both replicas serving certificates of the Secret's CA", func() (bool, string) {
		sec, err := h.cs.CoreV1().Secrets(setup.SecretNamespace).Get(ctx, setup.SecretName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(sec.Data["ca.crt"]) {
			return false, "no CA in the Secret yet"
		}
		for _, port := range []int{portA, portB} {
			crt, err := servedCert(port)
			if err != nil {
				return false, fmt.Sprintf("port %d: %v", port, err)
			}
			if _, err := crt.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
				return false, fmt.Sprintf("port %d: %v", port, err)
			}
		}
		vwc, err := h.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, setup.Configuration, metav1.GetOptions{})
		if err != nil || !bytes.Equal(vwc.Webhooks[0].ClientConfig.CABundle, sec.Data["ca.crt"]) {
			return false, fmt.Sprintf("caBundle is not the Secret's CA (%v)", err)
		}
		return true, ""
	})
}
