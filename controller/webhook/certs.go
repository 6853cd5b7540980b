package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Keys of the certificate Secret, as cert-controller writes them.
const (
	certKey   = "tls.crt"
	keyKey    = "tls.key"
	caCertKey = "ca.crt"
	caKeyKey  = "ca.key"
)

// nameScoped is a manager whose rest config adds a metadata.name field
// selector to every list and watch of the three objects cert-controller
// caches. cert-controller builds its own cache from GetConfig() without
// selectors, which would list every Secret of the namespace and every
// ValidatingWebhookConfiguration and CRD of the cluster, needing list and
// watch on all of them; with the selector, RBAC rules with resourceNames
// (list and watch included) suffice.
type nameScoped struct {
	manager.Manager
	cfg  *rest.Config
	gate *secretGate
}

// Add registers cert-controller's runnables with the manager, holding back
// its Secret reconciler (see secretGate) and noting its cache for the gate.
func (m nameScoped) Add(r manager.Runnable) error {
	if m.gate != nil {
		switch r := r.(type) {
		case cache.Cache:
			if m.gate.cache == nil {
				m.gate.cache = r
			}
		case controller.Controller:
			return m.Manager.Add(gatedController{Controller: r, gate: m.gate})
		}
	}
	return m.Manager.Add(r)
}

// secretGate holds cert-controller's Secret reconciler back until the
// rotator's cache holds a CA and a serving certificate its rotator takes
// as valid. Without it, at a first start both the rotator's start and the
// reconcile of the still empty Secret generate a CA and a serving key (RSA
// 2048, a random search for primes: a fifth of a second of CPU on a busy
// node) and write them; one of the writes fails on a conflict and is logged
// as an error. The rotator's start fills the Secret (or, failing, stops the
// manager); the reconciler then finds it valid and only writes the CA into
// the webhook configuration and the CRD.
type secretGate struct {
	cache  cache.Cache // the rotator's own (set when it is added)
	key    types.NamespacedName
	valid  func(*corev1.Secret, time.Time) bool
	period time.Duration // how often the cache is read while closed
}

// wait returns nil once the Secret in the rotator's cache is valid, or the
// context's error.
func (g *secretGate) wait(ctx context.Context) error {
	if g.cache == nil {
		return nil
	}
	if !g.cache.WaitForCacheSync(ctx) {
		return ctx.Err()
	}
	t := time.NewTicker(g.period)
	defer t.Stop()
	for {
		var sec corev1.Secret
		if err := g.cache.Get(ctx, g.key, &sec); err == nil && g.valid(&sec, time.Now()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// gatedController starts cert-controller's reconciler once its gate opens.
type gatedController struct {
	controller.Controller
	gate *secretGate
}

func (c gatedController) Start(ctx context.Context) error {
	if err := c.gate.wait(ctx); err != nil {
		return nil // stopped before it opened
	}
	return c.Controller.Start(ctx)
}

// NeedLeaderElection: every replica serves admission, so every replica
// keeps its certificate (cert-controller's reconciler asks for none either).
func (gatedController) NeedLeaderElection() bool { return false }

func (m nameScoped) GetConfig() *rest.Config { return m.cfg }

// GetClient is the manager's client, except that an update of an object
// cert-controller writes its CA into (the webhook configuration, the CRD)
// is not sent when the object already holds what it would write:
// cert-controller updates them on every pass, unconditionally (twice at
// every start, and after every certificate renewal). The apiserver's work
// for a no-op update of the bgppeers CRD was 37 ms of CPU against 3.5 ms
// for reading it, at start beside the Service informer's initial stream.
func (m nameScoped) GetClient() client.Client {
	return skipUnchanged{Client: m.Manager.GetClient(), live: m.Manager.GetAPIReader()}
}

// skipUnchanged compares an unstructured object to be updated with the live
// one (read by name with a field selector: the RBAC rules name the objects
// and allow list, not get) and sends the update only if anything but the
// metadata differs.
type skipUnchanged struct {
	client.Client
	live client.Reader
}

func (c skipUnchanged) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return c.Client.Update(ctx, obj, opts...)
	}
	l := &unstructured.UnstructuredList{}
	gvk := u.GroupVersionKind()
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := c.live.List(ctx, l, client.MatchingFields{"metadata.name": u.GetName()}); err == nil &&
		len(l.Items) == 1 && sameContent(&l.Items[0], u) {
		return nil
	}
	return c.Client.Update(ctx, obj, opts...)
}

// sameContent reports whether two objects agree in everything but their
// metadata and status.
func sameContent(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		m := make(map[string]any, len(u.Object))
		for k, v := range u.Object {
			if k != "metadata" && k != "status" {
				m[k] = v
			}
		}
		return m
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

// namedLists maps a collection path to the one name listed in it.
type namedLists map[string]string

func (n namedLists) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		name, ok := n[req.URL.Path]
		if !ok || req.Method != http.MethodGet {
			return rt.RoundTrip(req)
		}
		req = req.Clone(req.Context())
		q := req.URL.Query()
		q.Set("fieldSelector", fields.OneTermEqualSelector("metadata.name", name).String())
		req.URL.RawQuery = q.Encode()
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// scopedConfig returns a copy of cfg whose lists and watches of the
// certificate Secret, the ValidatingWebhookConfiguration and the CRD select
// those objects by name.
func scopedConfig(cfg *rest.Config, o Options) *rest.Config {
	n := namedLists{"/api/v1/namespaces/" + o.Namespace + "/secrets": o.SecretName}
	if o.ValidatingWebhookConfiguration != "" {
		n["/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"] = o.ValidatingWebhookConfiguration
	}
	if o.ConversionCRD != "" {
		n["/apis/apiextensions.k8s.io/v1/customresourcedefinitions"] = o.ConversionCRD
	}
	rc := rest.CopyConfig(cfg)
	prev := rc.WrapTransport
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return n.wrap(rt)
	}
	return rc
}

// addRotator registers cert-controller's rotator on every replica (not only
// the leader: every replica serves admission). It keeps a self-signed CA
// and a serving certificate in the Secret, renews them LookaheadInterval
// before they expire, and writes the CA into the webhook configuration and
// the CRD's conversion config.
func addRotator(mgr manager.Manager, o Options, ready chan struct{}) error {
	var hooks []rotator.WebhookInfo
	if o.ValidatingWebhookConfiguration != "" {
		hooks = append(hooks, rotator.WebhookInfo{Name: o.ValidatingWebhookConfiguration, Type: rotator.Validating})
	}
	if o.ConversionCRD != "" {
		hooks = append(hooks, rotator.WebhookInfo{Name: o.ConversionCRD, Type: rotator.CRDConversion})
	}
	if o.ControllerName == "" {
		o.ControllerName = "ecmplb-webhook-cert"
	}
	cr := &rotator.CertRotator{
		SecretKey:              types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName},
		CertDir:                o.CertDir,
		CAName:                 "ecmplb-webhook-ca",
		CAOrganization:         "ecmplb",
		DNSName:                o.ServiceName + "." + o.Namespace + ".svc",
		ExtraDNSNames:          o.ExtraDNSNames,
		IsReady:                ready,
		Webhooks:               hooks,
		FieldOwner:             "ecmplb-controller",
		RequireLeaderElection:  false,
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.CertValidity,
		LookaheadInterval:      o.Lookahead,
		RotationCheckFrequency: o.CheckInterval,
		CertName:               certKey,
		KeyName:                keyKey,
		ControllerName:         o.ControllerName,
	}
	gate := &secretGate{key: cr.SecretKey, period: 20 * time.Millisecond, valid: func(sec *corev1.Secret, now time.Time) bool {
		return validSecret(sec, cr.CAName, cr.DNSName, now.Add(o.Lookahead))
	}}
	return rotator.AddRotator(nameScoped{Manager: mgr, cfg: scopedConfig(mgr.GetConfig(), o), gate: gate}, cr)
}

// validSecret is the rotator's test of a filled Secret: a CA valid for
// caName and a serving certificate it signed valid for dnsName, both still
// at the given time (now plus the renewal lookahead).
func validSecret(sec *corev1.Secret, caName, dnsName string, at time.Time) bool {
	ca := sec.Data[caCertKey]
	okCA, err := rotator.ValidCert(ca, ca, sec.Data[caKeyKey], caName, nil, at)
	if err != nil || !okCA {
		return false
	}
	ok, err := rotator.ValidCert(ca, sec.Data[certKey], sec.Data[keyKey], dnsName, &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, at)
	return err == nil && ok
}

// certSource serves the certificate in the Secret: it watches that one
// Secret (by name), keeps its key pair in memory for the TLS server, so a
// rotated certificate is served at once without a volume's kubelet sync
// delay, and writes it to CertDir, where cert-controller checks that the
// certificate is in place before it reports ready.
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
		return // not filled yet: cert-controller will
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

// addCertSource starts a cache of the one certificate Secret on every
// replica and feeds it to a certSource.
func addCertSource(mgr manager.Manager, o Options, log *slog.Logger) (*certSource, error) {
	src := &certSource{dir: o.CertDir, log: log}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {
				Namespaces: map[string]cache.Config{o.Namespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", o.SecretName),
			},
		},
	})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(context.Background(), &corev1.Secret{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    src.update,
		UpdateFunc: func(_, obj any) { src.update(obj) },
	}); err != nil {
		return nil, err
	}
	if err := mgr.Add(everyReplica{c}); err != nil {
		return nil, err
	}
	return src, nil
}

// everyReplica runs a runnable whether or not this replica leads.
type everyReplica struct{ manager.Runnable }

func (everyReplica) NeedLeaderElection() bool { return false }
