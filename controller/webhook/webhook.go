// Package webhook serves ecmplb's admission webhooks (validation of the
// metallb.io objects, BGPPeer version conversion) from every controller
// replica, over TLS with a certificate the replicas manage themselves: a
// self-signed CA and a serving certificate in a Secret, renewed before they
// expire, the CA written into the ValidatingWebhookConfiguration and the
// bgppeers CRD's conversion config (certs.go).
package webhook

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/ecmplb/ecmplb/internal/conversion"
)

// Options configure the webhook server.
type Options struct {
	// Addr is host:port of the HTTPS server, e.g. ":9443".
	Addr string
	// CertDir receives a copy of the serving certificate (tls.crt, tls.key),
	// for tools that read it from disk; the server serves it from memory.
	CertDir string
	// Namespace of the Secret and the Service; also the one namespace whose
	// metallb.io objects are admitted.
	Namespace string
	// SecretName is the Secret holding the CA and the serving certificate.
	SecretName string
	// ServiceName is the webhook Service: the certificate is for
	// <ServiceName>.<Namespace>.svc.
	ServiceName string
	// ExtraDNSNames are further names the certificate covers (tests use
	// "localhost" with a url clientConfig).
	ExtraDNSNames []string
	// ValidatingWebhookConfiguration and ConversionCRD are the objects the
	// CA is written into ("" skips one).
	ValidatingWebhookConfiguration string
	ConversionCRD                  string
	// CAValidity and CertValidity are the lifetimes of the CA and the
	// serving certificate; Lookahead is how long before expiry they are
	// renewed; CheckInterval how often the Secret and the CA bundles are
	// checked besides at the renewal time and on any change of them. Zero:
	// 10 years, 1 year, 90 days, 1 hour.
	CAValidity, CertValidity, Lookahead, CheckInterval time.Duration
	// Logger receives logs.
	Logger *slog.Logger
}

// Defaults of Options' durations.
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultLookahead     = 90 * 24 * time.Hour
	DefaultCheckInterval = time.Hour
)

// Setup adds the webhook server, the certificate rotator and a readiness
// check ("webhook") to mgr. Everything it adds runs on every replica,
// leader or not.
func Setup(mgr manager.Manager, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Namespace == "" || o.SecretName == "" || o.ServiceName == "" || o.CertDir == "" {
		return fmt.Errorf("webhook: namespace, secret name, service name and cert dir must be set")
	}
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("webhook address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("webhook address %q: %w", o.Addr, err)
	}
	o.CAValidity = orDuration(o.CAValidity, DefaultCAValidity)
	o.CertValidity = orDuration(o.CertValidity, DefaultCertValidity)
	o.Lookahead = orDuration(o.Lookahead, DefaultLookahead)
	o.CheckInterval = orDuration(o.CheckInterval, DefaultCheckInterval)
	if o.Lookahead >= o.CertValidity || o.Lookahead >= o.CAValidity {
		return fmt.Errorf("webhook: certificate validity %v and CA validity %v must exceed the renewal lookahead %v", o.CertValidity, o.CAValidity, o.Lookahead)
	}

	src, rot, err := addCerts(mgr, o)
	if err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: host,
		Port: port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.MinVersion = tls.VersionTLS12
			c.GetCertificate = src.getCertificate
		}},
	})
	a := &admitter{reader: mgr.GetAPIReader(), namespace: o.Namespace, log: o.Logger}
	for path, h := range a.handlers(mgr.GetScheme()) {
		srv.Register(path, h)
	}
	// BGPPeer v1beta1 <-> v1beta2, for the bgppeers CRD's conversion webhook.
	srv.Register("/convert", conversion.Handler(o.Logger))
	// A webhook.Server never needs leader election: the manager starts it
	// on every replica.
	if err := mgr.Add(srv); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhook", readyCheck(src.loaded, rot.injected, srv.StartedChecker(), o.Namespace+"/"+o.SecretName))
}

// readyCheck reports ready only once a certificate is served, its CA is in
// the webhook configurations (so the apiserver trusts it) and the server
// listens: a rollout must not send admission to a replica that would fail
// the TLS handshake.
func readyCheck(loaded func() bool, injected <-chan struct{}, started healthz.Checker, secret string) healthz.Checker {
	return func(req *http.Request) error {
		if !loaded() {
			return fmt.Errorf("no serving certificate yet (Secret %s)", secret)
		}
		select {
		case <-injected:
		default:
			return fmt.Errorf("CA not yet written into the webhook configurations")
		}
		return started(req)
	}
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
