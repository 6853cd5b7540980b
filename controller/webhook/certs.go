package webhook

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// fieldOwner names the controller's writes of the Secret and the CA bundles.
const fieldOwner = "ecmplb-controller"

// The objects the CA is written into.
var (
	vwcGVK = schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}
	crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}
)

// rotator keeps the certificate Secret filled with a valid CA and serving
// certificate (certSpec.renew) and the CA in the webhook configuration and
// the CRD's conversion config. It runs on every replica, converging what it
// reads from the apiserver to what it wants: a pass reads the Secret, writes
// it when it needs renewing, then reads both objects and writes each whose
// CA differs; a failed pass is retried with backoff, and a write counts only
// once the apiserver took it (two replicas renewing at once: one write is
// refused on its resourceVersion, and that replica's next pass reads the
// other's). A pass runs at the start, on every change of the three objects
// (kick), and at the renewal time or every check interval, whichever comes
// first. Every read is a List by name: the RBAC rules name the objects.
type rotator struct {
	spec                 certSpec
	namespace, secret    string
	vwc, crd             string // "": none
	api                  client.Reader
	write                client.Writer
	log                  *slog.Logger
	now                  func() time.Time
	newKey               func() (crypto.Signer, error)
	check                time.Duration
	minBackoff, maxRetry time.Duration

	kick     chan struct{}
	injected chan struct{} // closed once the CA is in both objects
	once     sync.Once
}

func newRotator(o Options, api client.Reader, write client.Writer) *rotator {
	names := append([]string{o.ServiceName + "." + o.Namespace + ".svc"}, o.ExtraDNSNames...)
	return &rotator{
		spec: certSpec{caName: "ecmplb-webhook-ca", caOrg: "ecmplb", dnsNames: names,
			caValidity: o.CAValidity, certValidity: o.CertValidity, lookahead: o.Lookahead},
		namespace: o.Namespace, secret: o.SecretName, vwc: o.ValidatingWebhookConfiguration, crd: o.ConversionCRD,
		api: api, write: write, log: o.Logger, now: time.Now, newKey: newP256Key,
		check: o.CheckInterval, minBackoff: 100 * time.Millisecond, maxRetry: 30 * time.Second,
		kick: make(chan struct{}, 1), injected: make(chan struct{}),
	}
}

// Kick asks for a pass soon (one of the three objects changed).
func (r *rotator) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// NeedLeaderElection: every replica serves admission and keeps the
// certificate it serves valid.
func (*rotator) NeedLeaderElection() bool { return false }

// Start runs passes until ctx ends.
func (r *rotator) Start(ctx context.Context) error {
	backoff := r.minBackoff
	for {
		next, err := r.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait, kicks := r.check, r.kick
		if err != nil {
			r.log.Warn("webhook certificate: pass failed, retrying", "in", backoff.String(), "error", err.Error())
			// Changes of the objects do not cut a backoff short.
			wait, kicks = backoff, nil
			backoff = min(2*backoff, r.maxRetry)
		} else {
			backoff = r.minBackoff
			wait = min(wait, max(next.Sub(r.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-kicks:
		case <-t.C:
		}
		t.Stop()
	}
}

// pass converges once and returns when the next renewal is due.
func (r *rotator) pass(ctx context.Context) (time.Time, error) {
	var l corev1.SecretList
	if err := r.api.List(ctx, &l, client.InNamespace(r.namespace), client.MatchingFields{"metadata.name": r.secret}); err != nil {
		return time.Time{}, fmt.Errorf("read Secret %s/%s: %w", r.namespace, r.secret, err)
	}
	if len(l.Items) == 0 {
		return time.Time{}, fmt.Errorf("Secret %s/%s not found (the chart creates it, the controller fills it)", r.namespace, r.secret)
	}
	sec := &l.Items[0]
	out, why, next, err := r.spec.renew(sec.Data, r.now(), r.newKey)
	if err != nil {
		return time.Time{}, err
	}
	if out != nil {
		sec.Data = out
		if err := r.write.Update(ctx, sec, client.FieldOwner(fieldOwner)); err != nil {
			return time.Time{}, fmt.Errorf("write Secret %s/%s: %w", r.namespace, r.secret, err)
		}
		r.log.Info("webhook certificate written", "secret", r.namespace+"/"+r.secret, "why", why,
			"renewal", next.UTC().Format(time.RFC3339))
	}
	ca := sec.Data[caCertKey]
	if r.vwc != "" {
		if err := r.inject(ctx, vwcGVK, r.vwc, ca, webhookBundles); err != nil {
			return time.Time{}, err
		}
	}
	if r.crd != "" {
		if err := r.inject(ctx, crdGVK, r.crd, ca, conversionBundle); err != nil {
			return time.Time{}, err
		}
	}
	r.once.Do(func() { close(r.injected) })
	return next, nil
}

// inject reads one object and, when any of the CA bundles that bundles
// finds in it is not ca, writes ca into all of them.
func (r *rotator) inject(ctx context.Context, gvk schema.GroupVersionKind, name string, ca []byte,
	bundles func(*unstructured.Unstructured) ([]map[string]any, error)) error {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := r.api.List(ctx, l, client.MatchingFields{"metadata.name": name}); err != nil {
		return fmt.Errorf("read %s %s: %w", gvk.Kind, name, err)
	}
	if len(l.Items) == 0 {
		return fmt.Errorf("%s %s not found", gvk.Kind, name)
	}
	obj := &l.Items[0]
	obj.SetGroupVersionKind(gvk)
	cfgs, err := bundles(obj)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, name, err)
	}
	want, changed := base64.StdEncoding.EncodeToString(ca), false
	for _, cc := range cfgs {
		if cc["caBundle"] != want {
			cc["caBundle"], changed = want, true
		}
	}
	if !changed {
		return nil
	}
	if err := r.write.Update(ctx, obj, client.FieldOwner(fieldOwner)); err != nil {
		return fmt.Errorf("write the CA into %s %s: %w", gvk.Kind, name, err)
	}
	r.log.Info("webhook CA written", "kind", gvk.Kind, "name", name)
	return nil
}

// webhookBundles finds every webhook's clientConfig (in place).
func webhookBundles(u *unstructured.Unstructured) ([]map[string]any, error) {
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, "webhooks")
	if err != nil {
		return nil, err
	}
	hooks, _ := v.([]any)
	var out []map[string]any
	for i, h := range hooks {
		m, ok := h.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("webhooks[%d] is not an object", i)
		}
		cc, ok := m["clientConfig"].(map[string]any)
		if !ok {
			cc = map[string]any{}
			m["clientConfig"] = cc
		}
		out = append(out, cc)
	}
	return out, nil
}

// conversionBundle finds the CRD's conversion webhook clientConfig (in place).
func conversionBundle(u *unstructured.Unstructured) ([]map[string]any, error) {
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "conversion", "webhook", "clientConfig")
	if err != nil {
		return nil, err
	}
	cc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no spec.conversion.webhook.clientConfig")
	}
	return []map[string]any{cc}, nil
}

// certSource serves the certificate in the Secret: it watches that one
// Secret (by name), keeps its key pair in memory for the TLS server, so a
// rotated certificate is served at once without a volume's kubelet sync
// delay, and writes it to CertDir.
type certSource struct {
	dir  string
	log  *slog.Logger
	cert atomic.Pointer[tls.Certificate]
}

// getCertificate is the TLS server's tls.Config.GetCertificate.
func (s *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.cert.Load()
	if c == nil {
		return nil, fmt.Errorf("no serving certificate yet")
	}
	return c, nil
}

// loaded reports whether a certificate is being served.
func (s *certSource) loaded() bool { return s.cert.Load() != nil }

func (s *certSource) update(obj any) {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	crt, key := sec.Data[certKey], sec.Data[keyKey]
	if len(crt) == 0 || len(key) == 0 {
		return // not filled yet: the rotator will
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		s.log.Warn("webhook certificate Secret holds no valid key pair", "secret", sec.Namespace+"/"+sec.Name, "error", err.Error())
		return
	}
	if err := writeFiles(s.dir, map[string][]byte{certKey: crt, keyKey: key}); err != nil {
		s.log.Error("writing the webhook certificate", "dir", s.dir, "error", err.Error())
		return
	}
	s.cert.Store(&pair)
	s.log.Info("webhook serving certificate loaded", "secret", sec.Namespace+"/"+sec.Name, "notAfter", pair.Leaf.NotAfter)
}

// writeFiles replaces each file atomically (temporary file, rename).
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		tmp, err := os.CreateTemp(dir, "."+name)
		if err != nil {
			return err
		}
		_, werr := tmp.Write(data)
		cerr := tmp.Close()
		if werr != nil || cerr != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("%s: %v %v", name, werr, cerr)
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// addCerts adds, on every replica, the rotator and a cache of the three
// objects it keeps (each selected by name): the Secret feeds the
// certSource, and a change of any of them kicks the rotator.
func addCerts(mgr manager.Manager, o Options) (*certSource, *rotator, error) {
	src := &certSource{dir: o.CertDir, log: o.Logger}
	rot := newRotator(o, mgr.GetAPIReader(), mgr.GetClient())
	byName := func(name string) cache.ByObject {
		return cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", name)}
	}
	secret := byName(o.SecretName)
	secret.Namespaces = map[string]cache.Config{o.Namespace: {}}
	objs := map[client.Object]cache.ByObject{&corev1.Secret{}: secret}
	for gvk, name := range map[schema.GroupVersionKind]string{vwcGVK: o.ValidatingWebhookConfiguration, crdGVK: o.ConversionCRD} {
		if name != "" {
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(gvk)
			objs[m] = byName(name)
		}
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), ByObject: objs})
	if err != nil {
		return nil, nil, err
	}
	kick := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { rot.Kick() },
		UpdateFunc: func(any, any) { rot.Kick() },
		DeleteFunc: func(any) { rot.Kick() },
	}
	for obj := range objs {
		inf, err := c.GetInformer(context.Background(), obj, cache.BlockUntilSynced(false))
		if err != nil {
			return nil, nil, err
		}
		h := toolscache.ResourceEventHandler(kick)
		if _, ok := obj.(*corev1.Secret); ok {
			h = toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(o any) { src.update(o); rot.Kick() },
				UpdateFunc: func(_, o any) { src.update(o); rot.Kick() },
				DeleteFunc: kick.DeleteFunc,
			}
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, nil, err
		}
	}
	if err := mgr.Add(everyReplica{c}); err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(rot); err != nil {
		return nil, nil, err
	}
	return src, rot, nil
}

// everyReplica runs a runnable whether or not this replica leads.
type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }
