// Command ecmplb-controller allocates IPs to LoadBalancer Services from
// metallb.io IPAddressPools.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/ecmplb/ecmplb/controller/app"
	"github.com/ecmplb/ecmplb/internal/endpoint"
)

// streamingLists turns on client-go's WatchListClient feature (unless the
// environment says otherwise): informers then receive their initial state
// as a stream of objects instead of one large list, which keeps the
// controller's peak memory low at start with many Services.
func streamingLists() {
	const env = "KUBE_FEATURE_WatchListClient"
	if _, set := os.LookupEnv(env); !set {
		_ = os.Setenv(env, "true")
	}
}

func main() {
	streamingLists()
	var cfg app.Config
	var logLevel slog.Level
	var qps float64
	flag.StringVar(&cfg.Namespace, "namespace", "metallb-system", "namespace of the IPAddressPools and of the leader-election Lease")
	flag.StringVar(&cfg.LoadBalancerClass, "lb-class", "", "handle only Services with this spec.loadBalancerClass (default: only Services without a class)")
	flag.StringVar(&cfg.MetricsAddr, "metrics-addr", ":7472", "host:port of the Prometheus /metrics endpoint (0 disables; the controller runs in the pod network, so the default binds the pod's address)")
	flag.StringVar(&cfg.HealthAddr, "health-addr", ":7473", "host:port of /healthz and /readyz (0 disables)")
	flag.StringVar(&cfg.PprofAddr, "pprof-addr", "", "host:port for net/http/pprof (empty: off); loopback only, e.g. 127.0.0.1:6060")
	flag.BoolVar(&cfg.LeaderElect, "leader-elect", true, "use a Lease so only one replica allocates")
	flag.StringVar(&cfg.LeaderElectionID, "leader-election-id", "ecmplb-controller", "name of the leader-election Lease")
	flag.DurationVar(&cfg.LeaseDuration, "lease-duration", 0, "leader-election lease duration (0: 15s)")
	flag.DurationVar(&cfg.RenewDeadline, "renew-deadline", 0, "leader-election renew deadline (0: 10s)")
	flag.DurationVar(&cfg.RetryPeriod, "retry-period", 0, "leader-election retry period (0: 2s)")
	flag.Float64Var(&qps, "kube-api-qps", 1000, "API client queries per second")
	flag.IntVar(&cfg.Burst, "kube-api-burst", 2000, "API client burst")
	flag.IntVar(&cfg.Workers, "workers", 16, "parallel Service reconciles")
	flag.DurationVar(&cfg.StatusInterval, "pool-status-interval", 0, "minimum interval between IPAddressPool status writes (0: 1s)")
	flag.BoolVar(&cfg.PoolAnnotation, "pool-annotation", false, "also annotate Services with metallb.io/ip-allocated-from-pool (one more API write per allocation)")
	flag.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	flag.Parse() // also --kubeconfig, registered by controller-runtime
	cfg.QPS = float32(qps)
	if cfg.PprofAddr != "" {
		if err := endpoint.CheckLoopback("--pprof-addr", cfg.PprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "ecmplb-controller:", err)
			os.Exit(2)
		}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

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
