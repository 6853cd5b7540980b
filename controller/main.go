// Command ecmplb-controller allocates IPs to LoadBalancer Services from
// metallb.io IPAddressPools.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ecmplb/ecmplb/controller/app"
	"github.com/ecmplb/ecmplb/controller/eventgate"
	"github.com/ecmplb/ecmplb/internal/endpoint"
)

// config holds what the command line sets.
type config struct {
	app       app.Config
	logLevel  slog.Level
	qps       float64
	gcPercent int
}

// defaultGCPercent is the controller's GOGC. The live heap is mostly the
// Service cache, which only grows with the cluster; collecting at 1.5x it
// instead of Go's 2x keeps the peak resident size a quarter lower for a
// little more GC work, which the controller, waiting on the apiserver most
// of the time, can spare.
const defaultGCPercent = 50

// setGC applies --gc-percent unless the GOGC environment variable, which
// the Go runtime has already applied, says otherwise.
func setGC(percent int) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(percent)
	}
}

// registerFlags binds the controller's flags to c, with their defaults.
func registerFlags(fs *flag.FlagSet, c *config) {
	cfg := &c.app
	fs.StringVar(&cfg.Namespace, "namespace", "metallb-system", "namespace of the IPAddressPools and of the leader-election Lease")
	fs.StringVar(&cfg.LoadBalancerClass, "lb-class", "", "handle only Services with this spec.loadBalancerClass (default: only Services without a class)")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", ":7472", "host:port of the Prometheus /metrics endpoint (0 disables; the controller runs in the pod network, so the default binds the pod's address)")
	fs.StringVar(&cfg.HealthAddr, "health-addr", ":7473", "host:port of /healthz and /readyz (0 disables)")
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", "", "host:port for net/http/pprof (empty: off); loopback only, e.g. 127.0.0.1:6060")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", true, "use a Lease so only one replica allocates")
	fs.StringVar(&cfg.LeaderElectionID, "leader-election-id", "ecmplb-controller", "name of the leader-election Lease")
	fs.DurationVar(&cfg.LeaseDuration, "lease-duration", 0, "leader-election lease duration (0: 15s)")
	fs.DurationVar(&cfg.RenewDeadline, "renew-deadline", 0, "leader-election renew deadline (0: 10s)")
	fs.DurationVar(&cfg.RetryPeriod, "retry-period", 0, "leader-election retry period (0: 2s)")
	fs.Float64Var(&c.qps, "kube-api-qps", 1000, "API client queries per second")
	fs.IntVar(&cfg.Burst, "kube-api-burst", 2000, "API client burst")
	fs.IntVar(&cfg.Workers, "workers", 16, "parallel Service reconciles")
	fs.DurationVar(&cfg.StatusInterval, "pool-status-interval", 0, "minimum interval between IPAddressPool status writes (0: 1s)")
	fs.DurationVar(&cfg.EventMaxHold, "event-max-hold", eventgate.DefaultMaxHold, "how long an Event may wait while Service IPs are being written: a backlog's Events go once its writes pause, so they do not compete with them at the apiserver (0: Events are sent as recorded)")
	fs.BoolVar(&cfg.PoolAnnotation, "pool-annotation", true, "annotate Services with metallb.io/ip-allocated-from-pool, as MetalLB does (written in the same status patch as the address; an apiserver that drops metadata from status writes needs patch on services, which the chart does not grant)")
	fs.BoolVar(&cfg.ConfigurationState, "configuration-state", true, "write the ConfigurationState \"controller\" (whether the IPAddressPools loaded, and which were rejected)")
	fs.StringVar(&cfg.DeploymentName, "deployment-name", "", "the controller's Deployment (in --namespace), made the owner of the ConfigurationState \"controller\" so uninstalling deletes it (empty: no owner; needs get on that Deployment)")
	wh := &cfg.Webhook
	fs.StringVar(&wh.Addr, "webhook-addr", ":9443", "host:port of the HTTPS admission and conversion webhooks, served by every replica (0 disables)")
	fs.StringVar(&wh.CertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory the serving certificate is copied to (the certificate itself lives in --webhook-secret)")
	fs.StringVar(&wh.SecretName, "webhook-secret", "ecmplb-webhook-cert", "Secret (in --namespace) holding the webhook CA and serving certificate, created and renewed by the controller")
	fs.StringVar(&wh.ServiceName, "webhook-service", "ecmplb-webhook", "Service (in --namespace) in front of the webhooks: the certificate is for <service>.<namespace>.svc")
	fs.StringVar(&wh.ValidatingWebhookConfiguration, "webhook-configuration", "ecmplb-webhook", "ValidatingWebhookConfiguration whose caBundle the controller keeps current (empty: none)")
	fs.StringVar(&wh.ConversionCRD, "webhook-conversion-crd", "bgppeers.metallb.io", "CRD whose conversion webhook caBundle the controller keeps current (empty: none)")
	fs.Func("webhook-extra-dns-names", "comma-separated further names the serving certificate covers (e.g. localhost)", func(v string) error {
		wh.ExtraDNSNames = nil
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				wh.ExtraDNSNames = append(wh.ExtraDNSNames, n)
			}
		}
		return nil
	})
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.IntVar(&c.gcPercent, "gc-percent", defaultGCPercent, "Go GC target percentage (as GOGC, which wins when set): the heap grows this much over live data between collections; lower trades CPU for memory")
}

func main() {
	var c config
	registerFlags(flag.CommandLine, &c)
	flag.Parse() // also --kubeconfig, registered by controller-runtime
	setGC(c.gcPercent)
	cfg := c.app
	cfg.QPS = float32(c.qps)
	if cfg.PprofAddr != "" {
		if err := endpoint.CheckLoopback("--pprof-addr", cfg.PprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "ecmplb-controller:", err)
			os.Exit(2)
		}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: c.logLevel}))
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecmplb-controller: kubeconfig:", err)
		os.Exit(1)
	}
	if err := app.Run(ctrl.SetupSignalHandler(), restCfg, cfg); err != nil {
		cfg.Logger.Error("controller stopped", "error", err.Error())
		os.Exit(1)
	}
}
