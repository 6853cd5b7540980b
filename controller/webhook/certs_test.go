package webhook

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

var testSpec = certSpec{caName: "test-ca", caOrg: "test", dnsNames: []string{"svc.ns.svc", "localhost"},
	caValidity: 10 * 24 * time.Hour, certValidity: 48 * time.Hour, lookahead: 12 * time.Hour}

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// countingKeys makes P-256 keys and counts them.
type countingKeys struct{ n int }

func (k *countingKeys) newKey() (crypto.Signer, error) {
	k.n++
	return newP256Key()
}

// filled is testSpec's Secret made at t0.
func filled(t *testing.T) map[string][]byte {
	t.Helper()
	out, _, _, err := testSpec.renew(nil, t0, newP256Key)
	if err != nil || out == nil {
		t.Fatalf("renew of an empty Secret: %v %v", out, err)
	}
	return out
}

// An empty Secret is filled with a CA and a serving certificate it signed
// for every name, both with ECDSA P-256 keys; the next look is due
// lookahead before the serving certificate expires.
func TestRenewFillsAnEmptySecret(t *testing.T) {
	keys := &countingKeys{}
	out, why, next, err := testSpec.renew(map[string][]byte{}, t0, keys.newKey)
	if err != nil {
		t.Fatal(err)
	}
	if keys.n != 2 || !strings.HasPrefix(why, "CA: ") {
		t.Fatalf("%d keys made (%q), want a CA's and a serving certificate's", keys.n, why)
	}
	for _, k := range []string{caKeyKey, keyKey} {
		key, err := parseKey(out[k])
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if ec, ok := key.(*ecdsa.PrivateKey); !ok || ec.Curve != elliptic.P256() {
			t.Fatalf("%s is a %T, want ECDSA P-256", k, key)
		}
	}
	ca, err := parseCert(out[caCertKey])
	if err != nil || !ca.IsCA || ca.Subject.CommonName != "test-ca" {
		t.Fatalf("CA %v: %+v", err, ca)
	}
	leaf, err := parseCert(out[certKey])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range testSpec.dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: t0,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if want := t0.Add(testSpec.certValidity - testSpec.lookahead); !next.Equal(want) {
		t.Errorf("next look %s, want %s", next, want)
	}
}

// A Secret that is good stays as it is until its renewal time, and no key
// is made for it.
func TestRenewKeepsAGoodSecret(t *testing.T) {
	data := filled(t)
	due := t0.Add(testSpec.certValidity - testSpec.lookahead)
	for _, now := range []time.Time{t0, t0.Add(time.Hour), due.Add(-time.Second)} {
		keys := &countingKeys{}
		out, why, next, err := testSpec.renew(data, now, keys.newKey)
		if err != nil || out != nil || keys.n != 0 {
			t.Fatalf("at %s: out %v, %d keys (%q), %v", now, out != nil, keys.n, why, err)
		}
		if !next.Equal(due) {
			t.Fatalf("at %s: next %s, want %s", now, next, due)
		}
	}
}

// What is wrong is renewed, what is good kept: a serving certificate due,
// for other names, of another CA or with another key gets a new one under
// the same CA (the webhook configurations trust it); a CA due, not a CA,
// with another key, or garbage gets a new CA and certificate.
func TestRenewRenewsWhatIsWrong(t *testing.T) {
	other := filled(t)
	// A CA of 20 hours: due at 8 (lookahead 12).
	short := testSpec
	short.caValidity = 20 * time.Hour
	shortCA, _, _, err := short.renew(nil, t0, newP256Key)
	if err != nil {
		t.Fatal(err)
	}
	due := t0.Add(testSpec.certValidity - testSpec.lookahead)
	for _, tc := range []struct {
		name   string
		edit   func(map[string][]byte)
		spec   func(certSpec) certSpec
		now    time.Time
		keepCA bool
		why    string
	}{
		{name: "serving certificate due", now: due, keepCA: true, why: "within the renewal lookahead"},
		{name: "serving certificate expired", now: t0.Add(testSpec.certValidity + time.Hour), keepCA: true, why: "expired"},
		{name: "not yet valid", now: t0.Add(-2 * time.Hour), why: "not valid before"},
		{name: "a name added", spec: func(s certSpec) certSpec {
			s.dnsNames = append(append([]string{}, s.dnsNames...), "other.example")
			return s
		}, keepCA: true, why: "other.example"},
		{name: "signed by another CA", edit: func(d map[string][]byte) { d[certKey], d[keyKey] = other[certKey], other[keyKey] }, keepCA: true, why: "unknown authority"},
		{name: "key of another certificate", edit: func(d map[string][]byte) { d[keyKey] = other[keyKey] }, keepCA: true, why: "private key does not match"},
		{name: "no serving certificate", edit: func(d map[string][]byte) { delete(d, certKey) }, keepCA: true, why: "none"},
		{name: "CA due", edit: func(d map[string][]byte) { maps.Copy(d, shortCA) }, now: t0.Add(9 * time.Hour), why: "CA: expires"},
		{name: "CA key of another CA", edit: func(d map[string][]byte) { d[caKeyKey] = other[caKeyKey] }, why: "not the certificate's"},
		{name: "CA certificate is the serving one", edit: func(d map[string][]byte) { d[caCertKey] = d[certKey] }, why: "not a CA"},
		{name: "garbage CA", edit: func(d map[string][]byte) { d[caCertKey] = []byte("x") }, why: "no PEM certificate"},
		{name: "no CA key", edit: func(d map[string][]byte) { delete(d, caKeyKey) }, why: "CA: none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filled(t)
			data["unrelated"] = []byte("kept")
			if tc.edit != nil {
				tc.edit(data)
			}
			spec := testSpec
			if tc.spec != nil {
				spec = tc.spec(spec)
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			keys := &countingKeys{}
			out, why, next, err := spec.renew(data, now, keys.newKey)
			if err != nil || out == nil {
				t.Fatalf("renew: %v (renewed: %v)", err, out != nil)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("why %q, want it to say %q", why, tc.why)
			}
			if string(out["unrelated"]) != "kept" {
				t.Error("another key of the Secret was dropped")
			}
			wantKeys := 2
			if tc.keepCA {
				wantKeys = 1
				if !bytes.Equal(out[caCertKey], data[caCertKey]) || !bytes.Equal(out[caKeyKey], data[caKeyKey]) {
					t.Error("the CA was replaced")
				}
			} else if bytes.Equal(out[caCertKey], data[caCertKey]) {
				t.Error("the CA was kept")
			}
			if keys.n != wantKeys {
				t.Errorf("%d keys made, want %d", keys.n, wantKeys)
			}
			// What it wrote is good and stays so until next.
			again, why, next2, err := spec.renew(out, now, keys.newKey)
			if err != nil || again != nil || !next2.Equal(next) || !next.After(now) {
				t.Fatalf("renewed Secret not good at once: %v %q, next %s then %s", err, why, next, next2)
			}
		})
	}
}

// A Secret as earlier releases wrote it (cert-controller: RSA keys in
// PKCS #1) is kept while good: an upgrade renews nothing.
func TestRenewKeepsRSASecrets(t *testing.T) {
	rsaKey := func() crypto.Signer {
		k, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	pemRSA := func(k crypto.Signer) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))})
	}
	caKey, leafKey := rsaKey(), rsaKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ecmplb-webhook-ca"},
		DNSNames: []string{"ecmplb-webhook-ca"}, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(5 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "svc.ns.svc"},
		DNSNames: testSpec.dnsNames, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(2 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string][]byte{
		caCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), caKeyKey: pemRSA(caKey),
		certKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), keyKey: pemRSA(leafKey),
	}
	keys := &countingKeys{}
	out, why, _, err := testSpec.renew(data, t0, keys.newKey)
	if err != nil || out != nil || keys.n != 0 {
		t.Fatalf("an RSA Secret that is good: renewed %v (%q), %d keys, %v", out != nil, why, keys.n, err)
	}
	// Due, its serving certificate is renewed under the RSA CA.
	out, _, _, err = testSpec.renew(data, t0.Add(40*time.Hour), keys.newKey)
	if err != nil || out == nil || !bytes.Equal(out[caKeyKey], data[caKeyKey]) || keys.n != 1 {
		t.Fatalf("due: renewed %v, %d keys, CA kept %v, %v", out != nil, keys.n, bytes.Equal(out[caKeyKey], data[caKeyKey]), err)
	}
	if again, why, _, err := testSpec.renew(out, t0.Add(40*time.Hour), keys.newKey); again != nil || err != nil {
		t.Fatalf("the renewed Secret is not good: %q %v", why, err)
	}
}

// fakeAPI holds the Secret, the webhook configuration and the CRD, serves
// Lists by name, and takes an Update only at the stored resourceVersion,
// after asking refuse.
type fakeAPI struct {
	mu      sync.Mutex
	objs    map[string]client.Object // by kind
	rv      int
	updates []string // kind of each Update asked for
	refuse  func(kind string, n int) error
}

func (f *fakeAPI) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("the rotator lists by name (RBAC names the objects)")
}

func (f *fakeAPI) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	name, ok := "", false
	if lo.FieldSelector != nil {
		name, ok = lo.FieldSelector.RequiresExactMatch("metadata.name")
	}
	if !ok {
		return errors.New("a List not selected by name")
	}
	switch l := list.(type) {
	case *corev1.SecretList:
		if s, ok := f.objs["Secret"].(*corev1.Secret); ok && s.Name == name && s.Namespace == lo.Namespace {
			l.Items = []corev1.Secret{*s.DeepCopy()}
		}
	case *unstructured.UnstructuredList:
		if u, ok := f.objs[strings.TrimSuffix(l.GetKind(), "List")].(*unstructured.Unstructured); ok && u.GetName() == name {
			l.Items = []unstructured.Unstructured{*u.DeepCopy()}
		}
	default:
		return fmt.Errorf("list of %T", list)
	}
	return nil
}

func (f *fakeAPI) kind(obj client.Object) string {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.GetKind()
	}
	return "Secret"
}

func (f *fakeAPI) Update(_ context.Context, obj client.Object, _ ...client.UpdateOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := f.kind(obj)
	f.updates = append(f.updates, kind)
	if f.refuse != nil {
		if err := f.refuse(kind, len(f.updates)); err != nil {
			return err
		}
	}
	cur := f.objs[kind]
	if cur == nil || cur.GetResourceVersion() != obj.GetResourceVersion() {
		return apierrors.NewConflict(schema.GroupResource{Resource: kind}, obj.GetName(), errors.New("changed"))
	}
	f.rv++
	c := obj.DeepCopyObject().(client.Object)
	c.SetResourceVersion(strconv.Itoa(f.rv))
	f.objs[kind] = c
	return nil
}

func (f *fakeAPI) Create(context.Context, client.Object, ...client.CreateOption) error {
	return errors.New("unexpected create")
}
func (f *fakeAPI) Delete(context.Context, client.Object, ...client.DeleteOption) error {
	return errors.New("unexpected delete")
}
func (f *fakeAPI) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return errors.New("unexpected patch")
}
func (f *fakeAPI) Apply(context.Context, runtime.ApplyConfiguration, ...client.ApplyOption) error {
	return errors.New("unexpected apply")
}
func (f *fakeAPI) DeleteAllOf(context.Context, client.Object, ...client.DeleteAllOfOption) error {
	return errors.New("unexpected delete")
}

// secretData returns the stored Secret's data.
func (f *fakeAPI) secretData() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.objs["Secret"].(*corev1.Secret).DeepCopy().Data
}

// bundles returns the CA bundles of the stored configuration, in its
// webhooks' order, then the CRD's: an index names the same bundle at every
// call.
func (f *fakeAPI) bundles(t *testing.T) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range []struct {
		kind string
		find func(*unstructured.Unstructured) ([]map[string]any, error)
	}{{"ValidatingWebhookConfiguration", webhookBundles}, {"CustomResourceDefinition", conversionBundle}} {
		ccs, err := k.find(f.objs[k.kind].(*unstructured.Unstructured).DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		for _, cc := range ccs {
			s, _ := cc["caBundle"].(string)
			out = append(out, s)
		}
	}
	return out
}

func newFakeAPI() *fakeAPI {
	vwc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "vwc", "resourceVersion": "1"},
		"webhooks": []any{
			map[string]any{"name": "a", "clientConfig": map[string]any{"service": map[string]any{"name": "svc"}}},
			map[string]any{"name": "b", "clientConfig": map[string]any{"caBundle": "b2xk"}},
		}}}
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "crd.x", "resourceVersion": "1"},
		"spec": map[string]any{"conversion": map[string]any{"strategy": "Webhook",
			"webhook": map[string]any{"clientConfig": map[string]any{"service": map[string]any{"name": "svc"}}}}}}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cert", ResourceVersion: "1"}}
	return &fakeAPI{rv: 1, objs: map[string]client.Object{"Secret": sec, "ValidatingWebhookConfiguration": vwc, "CustomResourceDefinition": crd}}
}

func testRotator(api *fakeAPI) *rotator {
	r := newRotator(Options{Namespace: "ns", SecretName: "cert", ServiceName: "svc", ExtraDNSNames: []string{"localhost"},
		ValidatingWebhookConfiguration: "vwc", ConversionCRD: "crd.x", CAValidity: testSpec.caValidity,
		CertValidity: testSpec.certValidity, Lookahead: testSpec.lookahead, CheckInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)}, api, api)
	r.minBackoff, r.maxRetry = time.Millisecond, 4*time.Millisecond
	return r
}

// waitUntil polls cond (the rotator runs in its own goroutine) for 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The rotator converges: writes refused by the apiserver are retried until
// one is taken, readiness (injected) comes only once the CA is in every
// bundle, and a bundle changed behind its back is written back on a kick.
func TestRotatorConverges(t *testing.T) {
	api := newFakeAPI()
	r := testRotator(api)
	// The first Secret write and the first configuration write are refused.
	var refusedSecret, refusedVWC bool
	api.refuse = func(kind string, _ int) error {
		select {
		case <-r.injected:
			if !refusedSecret || !refusedVWC {
				t.Error("ready before the refused writes were retried")
			}
		default:
		}
		switch {
		case kind == "Secret" && !refusedSecret:
			refusedSecret = true
			return apierrors.NewInternalError(errors.New("etcd busy"))
		case kind == "ValidatingWebhookConfiguration" && !refusedVWC:
			refusedVWC = true
			return apierrors.NewTimeoutError("slow", 1)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-r.injected
	data := api.secretData()
	if out, why, _, err := r.spec.renew(data, time.Now(), newP256Key); out != nil || err != nil {
		t.Fatalf("the stored Secret is not good: %q %v", why, err)
	}
	want := base64.StdEncoding.EncodeToString(data[caCertKey])
	for i, b := range api.bundles(t) {
		if b != want {
			t.Fatalf("bundle %d is %q, want the Secret's CA", i, b)
		}
	}
	api.mu.Lock()
	got := fmt.Sprint(api.updates)
	api.mu.Unlock()
	if want := "[Secret Secret ValidatingWebhookConfiguration ValidatingWebhookConfiguration CustomResourceDefinition]"; got != want {
		t.Fatalf("updates %s, want %s (each refused one once more, nothing else)", got, want)
	}

	// Someone wipes a caBundle (a chart upgrade re-applies the
	// configuration): the next pass writes it back, and only it.
	api.mu.Lock()
	vwc := api.objs["ValidatingWebhookConfiguration"].(*unstructured.Unstructured)
	ccs, _ := webhookBundles(vwc)
	delete(ccs[1], "caBundle")
	vwc.SetResourceVersion("100")
	api.updates = nil
	api.mu.Unlock()
	r.Kick()
	waitUntil(t, "the caBundle written back", func() bool { return api.bundles(t)[1] == want })
	api.mu.Lock()
	got = fmt.Sprint(api.updates)
	api.mu.Unlock()
	if got != "[ValidatingWebhookConfiguration]" {
		t.Fatalf("updates %s after the wipe, want the configuration's only", got)
	}
}

// Two replicas renewing at once: the second write is refused on its
// resourceVersion, and that replica's next pass keeps what the first wrote
// rather than writing keys of its own.
func TestRotatorYieldsToAnotherReplica(t *testing.T) {
	api := newFakeAPI()
	a, b := testRotator(api), testRotator(api)
	var aData map[string][]byte
	api.refuse = func(kind string, n int) error {
		if kind == "Secret" && n == 1 {
			// b's write, as a's lands just before it.
			out, _, _, err := a.spec.renew(nil, time.Now(), newP256Key)
			if err != nil {
				return err
			}
			s := api.objs["Secret"].(*corev1.Secret).DeepCopy()
			s.Data, s.ResourceVersion = out, "50"
			api.objs["Secret"], aData = s, out
		}
		return nil
	}
	if _, err := b.pass(context.Background()); !apierrors.IsConflict(err) {
		t.Fatalf("b's first pass: %v, want a conflict", err)
	}
	api.refuse = nil
	if _, err := b.pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := api.secretData(); !bytes.Equal(got[caCertKey], aData[caCertKey]) || !bytes.Equal(got[keyKey], aData[keyKey]) {
		t.Fatal("b replaced a's certificates")
	}
}

// A lookahead as long as either validity would renew on every check: refused.
func TestSetupRefusesLookaheadBeyondValidity(t *testing.T) {
	base := Options{Namespace: "ns", SecretName: "s", ServiceName: "svc", CertDir: t.TempDir(), Addr: "127.0.0.1:9443"}
	for _, o := range []Options{
		{CertValidity: time.Hour, Lookahead: time.Hour},
		{CAValidity: time.Hour, CertValidity: 2 * time.Hour, Lookahead: time.Hour},
	} {
		o.Namespace, o.SecretName, o.ServiceName, o.CertDir, o.Addr = base.Namespace, base.SecretName, base.ServiceName, base.CertDir, base.Addr
		var m manager.Manager // Setup refuses before it uses the manager
		err := Setup(m, o)
		if err == nil || !strings.Contains(err.Error(), "must exceed the renewal lookahead") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
