// Package app wires the speaker together: Kubernetes clients, the watch controller,
// the BGP speaker, BFD, status objects, Events and the metrics endpoint. The
// ecmplb-speaker binary only parses flags into Config and calls Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/internal/configstate"
	"github.com/ecmplb/ecmplb/internal/endpoint"
	"github.com/ecmplb/ecmplb/internal/events"
	"github.com/ecmplb/ecmplb/internal/scheme/lean"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/bfdlink"
	"github.com/ecmplb/ecmplb/speaker/bgp"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness/lease"
	"github.com/ecmplb/ecmplb/speaker/l2/mode"
	"github.com/ecmplb/ecmplb/speaker/status"
	"github.com/ecmplb/ecmplb/speaker/watch"
)

// Config is everything the speaker process is started with.
type Config struct {
	NodeName   string
	Kubeconfig string // empty: in-cluster
	Namespace  string // metallb.io objects; default metallb-system
	// MetricsAddr serves /metrics (empty: no endpoint). A bare IPv6 host is
	// accepted ("fd00::1:7472", as "$(HOST_IP):7472" expands).
	MetricsAddr string
	// PprofAddr serves net/http/pprof (empty: off); it must be a loopback
	// address.
	PprofAddr string
	// ServiceStatus writes ServiceBGPStatus objects.
	ServiceStatus bool
	// Events records Events on Services and the Node.
	Events bool
	// ConfigurationState writes the ConfigurationState "speaker-<node>":
	// whether the configuration loaded and, if not, which objects were
	// rejected and why.
	ConfigurationState bool
	// LoadBalancerClass: announce only Services of this spec.loadBalancerClass
	// ("" = only Services without a class), as the controller's --lb-class.
	LoadBalancerClass string
	// StatusQPS, StatusBurst and StatusWorkers are the ServiceBGPStatus
	// writer's own client budget and concurrency (defaults 500 / 1000 /
	// status.DefaultWorkers). Its client has its own rate limiter and its own
	// connection, so a burst of status writes never delays the watches that
	// drive the routes, nor the Events and the ConfigurationState.
	StatusQPS     float32
	StatusBurst   int
	StatusWorkers int
	// QPS and Burst limit the API client (defaults 200 / 400).
	QPS   float32
	Burst int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer defaults to a new registry served at MetricsAddr.
	Registry *prometheus.Registry
	// RestConfig overrides Kubeconfig (tests).
	RestConfig *rest.Config
	// L2 configures layer 2 mode (ARP/NDP).
	L2 L2Config
}

// Run runs the speaker until ctx ends.
func Run(ctx context.Context, c Config) error {
	if c.NodeName == "" {
		return errors.New("node name is required (--node-name or NODE_NAME)")
	}
	if c.Namespace == "" {
		c.Namespace = "metallb-system"
	}
	if c.QPS == 0 {
		c.QPS, c.Burst = 200, 400
	}
	if c.StatusQPS == 0 {
		c.StatusQPS, c.StatusBurst = 500, 1000
	}
	if c.StatusWorkers == 0 {
		c.StatusWorkers = status.DefaultWorkers
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := c.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	rc := c.RestConfig
	if rc == nil {
		var err error
		if c.Kubeconfig != "" {
			rc, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		} else {
			rc, err = rest.InClusterConfig()
		}
		if err != nil {
			return fmt.Errorf("kubernetes client config: %w", err)
		}
	}
	rc = rest.CopyConfig(rc)
	rc.QPS, rc.Burst = c.QPS, c.Burst
	rc.UserAgent = "ecmplb-speaker/" + c.NodeName
	core, disc, err := watch.NewKubeClients(rc)
	if err != nil {
		return err
	}
	mlb, err := watch.NewMetalLBClient(rc)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var statusW *status.K8s
	sp := bgp.New(bgp.Options{Logger: log.With("component", "bgp"), Registerer: reg,
		OnSessionChange: func(string, bool) {
			if statusW != nil {
				statusW.ChangedAll()
			}
		}})
	bfdMgr := bfd.NewManager(bfd.WithLogger(log.With("component", "bfd")), bfd.WithRegisterer(reg))
	defer stopInOrder(sp.Close, func() int { return len(bfdMgr.Sessions()) }, func() { _ = bfdMgr.Close() }, bfdAfterBGP, time.Sleep)
	reg.MustRegister(bfdCollector{bfdMgr})
	link := bfdlink.New(bfdMgr, sp, log.With("component", "bfdlink"), reg)
	go link.Run(ctx)

	var recorder watch.EventRecorder
	if c.Events {
		rec := events.New(events.Options{Client: core, Scheme: lean.Scheme, Component: "ecmplb-speaker", Host: c.NodeName,
			Logger: log.With("component", "events")})
		defer rec.Close(2 * time.Second)
		recorder = rec
	}

	var ctrl *watch.Controller
	opts := watch.Options{
		NodeName: c.NodeName, Namespace: c.Namespace, Kube: watch.NewKubeListWatch(core, disc), MetalLB: mlb,
		Announcer: sp, Recorder: recorder, Logger: log.With("component", "watch"), Registerer: reg,
		LoadBalancerClass: c.LoadBalancerClass,
		OnSessions: func(s []announce.Session) {
			if err := link.SetSessions(s); err != nil {
				log.Error("configuring BFD", "err", err)
			}
		},
	}
	if c.ConfigurationState {
		obj := configstate.Speaker(c.NodeName)
		obj.ResolveOwner = nodeOwner(core, c.NodeName)
		w := configstate.NewWriter(configstate.REST{Client: mlb, Namespace: c.Namespace}, obj,
			configstate.WithLogger(log.With("component", "configurationstate")))
		opts.OnConfigState = w.Set
		go w.Run(ctx)
	}
	if c.ServiceStatus {
		// Until the first pass over the Services, every Service looks unannounced:
		// the writer waits, or its start-up cleanup would delete true objects.
		computed := make(chan struct{})
		opts.OnFirstSync = func() { close(computed) }
		sc := rest.CopyConfig(rc)
		sc.QPS, sc.Burst = c.StatusQPS, c.StatusBurst
		// A dialer of its own gives the writer its own transport, hence its
		// own TCP connection: its requests do not share the HTTP/2 stream
		// scheduling of the watch connection.
		sc.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		smlb, err := watch.NewMetalLBClient(sc)
		if err != nil {
			return err
		}
		statusW = status.NewK8s(smlb, c.Namespace, c.NodeName, func(k string) (status.Status, bool) {
			return ctrl.ServiceStatus(k)
		}, log.With("component", "status"), status.WithRegisterer(reg), status.WithStartAfter(computed),
			status.WithWorkers(c.StatusWorkers))
		opts.Status = statusW
	}
	if c.L2.Enabled {
		// ServiceL2Status objects: the writer's start-up cleanup waits for
		// the runtime's first choice with every Service known.
		var sink mode.StatusSink
		settled := make(chan struct{})
		if c.ServiceStatus {
			sc := rest.CopyConfig(rc)
			sc.QPS, sc.Burst = c.StatusQPS, c.StatusBurst
			sc.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
			smlb, err := watch.NewMetalLBClient(sc)
			if err != nil {
				return err
			}
			w := status.NewL2Writer(smlb, c.Namespace, c.NodeName, log.With("component", "l2-status"),
				status.WithRegisterer(reg), status.WithStartAfter(settled), status.WithWorkers(c.StatusWorkers))
			go w.Run(ctx)
			sink = w
		}
		var leases lease.Leases
		if c.L2.LeasePeriod > 0 {
			if leases, err = lease.NewREST(rc, c.Namespace); err != nil {
				return err
			}
		}
		var events serviceEvents
		if recorder != nil {
			// ctrl is set below, before its Run hands layer 2 mode a Service.
			events = func(key, reason, msg string) { ctrl.ServiceEvent(key, reason, msg) }
		}
		l2, err := startL2(ctx, c.L2, c.NodeName, log, reg, events, sink, func() { close(settled) }, leases, c.Namespace)
		if err != nil {
			return err
		}
		defer l2.stop() // stops answering before the process ends, announcing nothing
		opts.L2 = l2.Runtime
		first := opts.OnFirstSync
		opts.OnFirstSync = func() {
			if first != nil {
				first()
			}
			l2.Runtime.InputsSynced()
		}
	}
	ctrl = watch.New(opts)
	if statusW != nil {
		go statusW.Run(ctx)
	}

	if c.MetricsAddr != "" {
		ln, err := net.Listen("tcp", endpoint.ListenAddr(c.MetricsAddr))
		if err != nil {
			return fmt.Errorf("metrics listener on %q (--metrics-addr): %w", c.MetricsAddr, err)
		}
		srv := &http.Server{Handler: MetricsMux(reg), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("serving metrics", "addr", ln.Addr().String())
	}
	if c.PprofAddr != "" {
		if err := endpoint.ServePprof(ctx, c.PprofAddr, log); err != nil {
			return err
		}
	}
	log.Info("speaker starting", "node", c.NodeName, "namespace", c.Namespace)
	return ctrl.Run(ctx)
}

// nodeOwner reads the UID of the speaker's Node for the ownerReference of its
// ConfigurationState. It lists by name, as the speaker's Node informer does:
// the speaker may list and watch Nodes, and needs no get for this one read.
func nodeOwner(core rest.Interface, node string) func(context.Context) (*metav1.OwnerReference, error) {
	return func(ctx context.Context) (*metav1.OwnerReference, error) {
		var l corev1.NodeList
		err := core.Get().Resource("nodes").VersionedParams(&metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", node).String()}, metav1.ParameterCodec).
			Do(ctx).Into(&l)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", node, err)
		}
		if len(l.Items) != 1 {
			return nil, fmt.Errorf("node %s not found", node)
		}
		return configstate.NodeOwner(node, l.Items[0].UID), nil
	}
}

// bfdAfterBGP is how long the BFD sessions outlive the BGP sessions at a stop.
const bfdAfterBGP = 300 * time.Millisecond

// stopInOrder closes the BGP sessions first and the BFD sessions wait after
// them. A graceful-restart peer must see its BGP connection close, and start
// keeping our routes (stale), before our BFD session goes AdminDown: FRR 8.4
// takes a received AdminDown as a path failure (RFC 5882 §3.2 says it must
// not), and with the BGP session still up it then flushes every route
// (speaker/bgp TestFRRBFDAdminDownEndsGracefulRestart; 2 of 12 planned
// restarts lost their routes when BFD went first). closeBGP returns once
// every graceful-restart peer has closed its side of the connection (the
// proof that it took the session down), so a router slow to read our FIN
// on a loaded machine still sees it first; the wait after it is a margin.
// Without BFD sessions nothing waits.
func stopInOrder(closeBGP func(), bfdSessions func() int, closeBFD func(), wait time.Duration, sleep func(time.Duration)) {
	closeBGP()
	if bfdSessions() > 0 {
		sleep(wait)
	}
	closeBFD()
}
