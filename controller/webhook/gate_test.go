package webhook

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// secretCache is a cache holding one Secret; every Get is reported on gets.
type secretCache struct {
	cache.Cache
	secret atomic.Pointer[corev1.Secret]
	gets   chan struct{}
}

func (c *secretCache) WaitForCacheSync(context.Context) bool { return true }

func (c *secretCache) Get(_ context.Context, _ client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	defer func() {
		select {
		case c.gets <- struct{}{}:
		default:
		}
	}()
	s := c.secret.Load()
	if s == nil {
		return errors.New("not found")
	}
	s.DeepCopyInto(obj.(*corev1.Secret))
	return nil
}

// fakeController records its start.
type fakeController struct {
	controller.Controller
	started chan struct{}
}

func (c fakeController) Start(ctx context.Context) error {
	close(c.started)
	<-ctx.Done()
	return nil
}

// addRecorder is a manager that records what is added.
type addRecorder struct {
	manager.Manager
	added []manager.Runnable
}

func (m *addRecorder) Add(r manager.Runnable) error {
	m.added = append(m.added, r)
	return nil
}

// cert-controller's reconciler starts only once the Secret in the rotator's
// cache is valid; its cache is noted and its other runnables pass through.
func TestSecretGate(t *testing.T) {
	c := &secretCache{gets: make(chan struct{})}
	c.secret.Store(&corev1.Secret{Data: map[string][]byte{"ca.crt": []byte("empty")}})
	gate := &secretGate{key: types.NamespacedName{Namespace: "ns", Name: "cert"}, period: time.Millisecond,
		valid: func(s *corev1.Secret, _ time.Time) bool { return string(s.Data["ca.crt"]) == "valid" }}
	rec := &addRecorder{}
	m := nameScoped{Manager: rec, gate: gate}
	other := manager.RunnableFunc(func(context.Context) error { return nil })
	ctrl := fakeController{started: make(chan struct{})}
	for _, r := range []manager.Runnable{c, other, ctrl} {
		if err := m.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if gate.cache != c || len(rec.added) != 3 || rec.added[0] != c {
		t.Fatalf("gate's cache %v, added %v", gate.cache, rec.added)
	}
	gated, ok := rec.added[2].(gatedController)
	if !ok || gated.NeedLeaderElection() {
		t.Fatalf("the controller was added as %T", rec.added[2])
	}
	if _, ok := rec.added[1].(gatedController); ok {
		t.Fatal("a runnable other than the controller gated")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gated.Start(ctx) }()
	for range 3 { // three reads of an invalid Secret
		select {
		case <-c.gets:
		case <-ctrl.started:
			t.Fatal("started while the Secret was not valid")
		}
	}
	select {
	case <-ctrl.started:
		t.Fatal("started while the Secret was not valid")
	default:
	}
	c.secret.Store(&corev1.Secret{Data: map[string][]byte{"ca.crt": []byte("valid")}})
	select {
	case <-ctrl.started:
	case <-time.After(10 * time.Second):
		t.Fatal("not started once the Secret was valid")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Stopped before the gate opened: the controller never starts.
	c.secret.Store(nil)
	ctrl2 := fakeController{started: make(chan struct{})}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { done <- (gatedController{Controller: ctrl2, gate: gate}).Start(ctx2) }()
	select {
	case <-c.gets:
	case <-ctrl2.started:
		t.Fatal("started while the Secret was missing")
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctrl2.started:
		t.Fatal("started after its context ended")
	default:
	}
}

// validSecret agrees with the rotator: valid with its CA and certificate,
// not with a CA or a certificate missing, for another name, or expiring
// within the lookahead.
func TestValidSecret(t *testing.T) {
	cr := &rotator.CertRotator{CAName: "test-ca", CAOrganization: "test", DNSName: "svc.ns.svc",
		ExtKeyUsages: &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	now := time.Now()
	ca, err := cr.CreateCACert(now.Add(-time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := cr.CreateCertPEM(ca, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	full := func() *corev1.Secret {
		return &corev1.Secret{Data: map[string][]byte{"ca.crt": ca.CertPEM, "ca.key": ca.KeyPEM, "tls.crt": crt, "tls.key": key}}
	}
	if !validSecret(full(), "test-ca", "svc.ns.svc", now) {
		t.Error("the rotator's own Secret is not valid")
	}
	for name, s := range map[string]*corev1.Secret{"empty": {}, "no CA key": full(), "no certificate": full()} {
		switch name {
		case "no CA key":
			delete(s.Data, "ca.key")
		case "no certificate":
			delete(s.Data, "tls.crt")
		}
		if validSecret(s, "test-ca", "svc.ns.svc", now) {
			t.Errorf("%s: valid", name)
		}
	}
	if validSecret(full(), "test-ca", "other.ns.svc", now) || validSecret(full(), "other-ca", "svc.ns.svc", now) {
		t.Error("valid for another name")
	}
	if validSecret(full(), "test-ca", "svc.ns.svc", now.Add(36*time.Hour)) {
		t.Error("a certificate expiring within the lookahead is valid")
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
		err := Setup(&addRecorder{}, o)
		if err == nil || !strings.Contains(err.Error(), "must exceed the renewal lookahead") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
