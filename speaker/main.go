// The embedded GoBGP listens on loopback for the session relay, signed with
// TCP MD5, which Linux refuses on the multipath TCP sockets Go's listeners use
// by default.
//go:debug multipathtcp=0

// Command ecmplb-speaker announces LoadBalancer Service addresses of one node over
// BGP (with BFD), from the metallb.io configuration.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ecmplb/ecmplb/internal/endpoint"
	"github.com/ecmplb/ecmplb/speaker/app"
)

func main() {
	var c app.Config
	var level string
	flag.StringVar(&c.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the node this speaker runs on (env NODE_NAME)")
	flag.StringVar(&c.Kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (empty: in-cluster)")
	flag.StringVar(&c.Namespace, "namespace", "metallb-system", "namespace of the metallb.io objects")
	flag.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:7472", "host:port for /metrics (empty: off). The speaker shares the node's network namespace: bind it to an address Prometheus reaches and the routers do not (deploy/ecmplb.yaml: the node's InternalIP, $(HOST_IP):7472); a bare IPv6 host is accepted")
	flag.StringVar(&c.PprofAddr, "pprof-addr", "", "host:port for net/http/pprof (empty: off); loopback only, e.g. 127.0.0.1:6060")
	flag.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	flag.BoolVar(&c.ServiceStatus, "service-status", true, "write ServiceBGPStatus objects")
	flag.BoolVar(&c.Events, "events", true, "record Events on Services and the Node")
	flag.BoolVar(&c.ConfigurationState, "configuration-state", true, "write the ConfigurationState speaker-<node> (whether the configuration loaded, and which objects were rejected)")
	flag.StringVar(&c.LoadBalancerClass, "lb-class", "", "announce only Services with this spec.loadBalancerClass (default: only Services without a class); must match the controller's --lb-class")
	gcPercent := flag.Int("gc-percent", 40, "Go GC target percentage (as GOGC, which wins when set): the heap grows this much over live data between collections; at 10,000 Services 40 held the peak RSS at 79.6 MiB where 50 held it at 83.7, the speaker's CPU 27.9 s against 28.7 (one make bench-speaker run each)")
	memLimit := flag.String("memory-limit", "100Mi", "soft limit for the Go runtime's memory (the GC works harder near it; 0: off; env GOMEMLIMIT wins)")
	qps := flag.Float64("kube-qps", 200, "API client queries per second")
	flag.IntVar(&c.Burst, "kube-burst", 400, "API client burst")
	statusQPS := flag.Float64("status-qps", 500, "queries per second of the ServiceBGPStatus writer's own API client (apart from --kube-qps)")
	flag.IntVar(&c.StatusBurst, "status-burst", 1000, "burst of the ServiceBGPStatus writer's API client")
	flag.IntVar(&c.StatusWorkers, "status-workers", 8, "ServiceBGPStatus objects written at once")
	flag.BoolVar(&c.L2.Enabled, "l2", true, "run layer 2 mode: answer ARP/NDP for the Service IPs of L2Advertisements this node is chosen for (needs CAP_NET_RAW), and send heartbeats to the other speakers (UDP --l2-heartbeat-port); without L2Advertisements it answers nothing")
	flag.IntVar(&c.L2.Port, "l2-heartbeat-port", 7947, "UDP port of the layer 2 heartbeat between speakers (the same on every speaker; open between the nodes)")
	flag.DurationVar(&c.L2.Interval, "l2-heartbeat-interval", app.DefaultL2Interval, "layer 2 heartbeat period (the same on every speaker): a speaker silent for 6 periods is down and its IPs move, one back is taken back after 10 periods")
	flag.StringVar(&c.L2.KeyFile, "l2-heartbeat-key-file", "", "file holding a shared key (the same on every speaker, e.g. a mounted Secret): heartbeats are authenticated with HMAC-SHA256 and unauthenticated ones dropped")
	flag.DurationVar(&c.L2.LeasePeriod, "l2-lease-period", 2*time.Second, "how often this speaker renews its Lease ecmplb-speaker-<node> in --namespace (the same on every speaker): a speaker whose renewals fail while another's work stops answering 4.5 periods after its last one, and the others take its IPs after 5 periods; 0: no Leases (nothing then fences a speaker cut off from the apiserver)")
	flag.Parse()
	c.QPS, c.StatusQPS = float32(*qps), float32(*statusQPS)
	if c.PprofAddr != "" {
		if err := endpoint.CheckLoopback("--pprof-addr", c.PprofAddr); err != nil {
			fmt.Fprintln(os.Stderr, "ecmplb-speaker:", err)
			os.Exit(2)
		}
	}
	if p, ok := gcPercentFor(os.LookupEnv, *gcPercent); ok {
		debug.SetGCPercent(p)
	}
	if os.Getenv("GOMEMLIMIT") == "" && *memLimit != "0" {
		q, err := resource.ParseQuantity(*memLimit)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad --memory-limit:", err)
			os.Exit(2)
		}
		debug.SetMemoryLimit(q.Value())
	}

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintln(os.Stderr, "bad --log-level:", err)
		os.Exit(2)
	}
	c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(c.Logger)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, c); err != nil {
		c.Logger.Error("speaker failed", "err", err)
		os.Exit(1)
	}
}

// gcPercentFor returns the GC percentage to set from --gc-percent, unless the
// GOGC environment variable, which the Go runtime has already applied, is set.
func gcPercentFor(lookupEnv func(string) (string, bool), flagValue int) (int, bool) {
	if _, set := lookupEnv("GOGC"); set {
		return 0, false
	}
	return flagValue, true
}
