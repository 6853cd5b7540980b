// Package app assembles the ecmplb controller: a controller-runtime manager
// with leader election, a trimmed informer cache, metrics and health
// endpoints, and the reconciler. main.go only maps flags to Config.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/eventgate"
	"github.com/ecmplb/ecmplb/controller/metrics"
	"github.com/ecmplb/ecmplb/controller/reconciler"
	"github.com/ecmplb/ecmplb/controller/webhook"
	"github.com/ecmplb/ecmplb/internal/configstate"
	"github.com/ecmplb/ecmplb/internal/endpoint"
	"github.com/ecmplb/ecmplb/internal/scheme"
)

// Config is everything the controller process is configured with.
type Config struct {
	// Namespace holds the IPAddressPools and the leader-election Lease.
	Namespace string
	// LoadBalancerClass selects the Services handled ("" = no class).
	LoadBalancerClass string
	// MetricsAddr serves /metrics ("0" disables).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("0" disables).
	HealthAddr string
	// PprofAddr serves net/http/pprof ("" or "0": off); it must be a
	// loopback address.
	PprofAddr string
	// LeaderElect enables leader election (a Lease named LeaderElectionID).
	LeaderElect      bool
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election
	// (zero: controller-runtime's defaults 15s, 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// QPS and Burst limit the controller's API client.
	QPS   float32
	Burst int
	// Workers is the number of parallel Service reconciles.
	Workers int
	// StatusInterval bounds how often pool status is written.
	StatusInterval time.Duration
	// EventMaxHold is how long an Event may wait while Service writes are
	// in flight (package eventgate); 0: Events are sent as recorded.
	EventMaxHold time.Duration
	// PoolAnnotation writes metallb.io/ip-allocated-from-pool on Services.
	PoolAnnotation bool
	// ConfigurationState writes the ConfigurationState "controller".
	ConfigurationState bool
	// DeploymentName is the controller's Deployment (in Namespace), made the
	// owner of its ConfigurationState so uninstalling deletes it ("": no
	// owner). Its UID is read when the object is created.
	DeploymentName string
	// Logger receives logs (default slog.Default()).
	Logger *slog.Logger
	// Registry receives the controller's metrics (default: the registry
	// served on MetricsAddr).
	Registry prometheus.Registerer
	// SkipNameValidation allows several instances in one process (tests).
	SkipNameValidation bool
	// Started, if set, is called with the reconciler once it is set up.
	Started func(*reconciler.Controller)
	// Webhook configures the admission and conversion webhooks, served by
	// every replica; Webhook.Addr "" or "0" turns them off. Namespace and
	// Logger default to the controller's.
	Webhook webhook.Options
}

// transform is the cache's transform. A Service is cached as a
// reconciler.Svc (reconciler.Compact): what allocation, sharing checks,
// status writes and Events read, a third of a trimmed corev1.Service. The
// reconciler reads Services from the informer's store, never through the
// client, and never writes cached objects back, so nothing dropped is lost;
// a Service edited into needing more arrives whole with the update. Of
// everything else the managed fields are dropped.
func transform(obj any) (any, error) {
	if svc, ok := obj.(*corev1.Service); ok {
		return reconciler.Compact(svc), nil
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// newInformer makes the cache's informers as controller-runtime does, but
// the Service informer over services (serviceListWatch: Services decoded
// straight into reconciler.Svcs) and without its namespace index: the
// cache holds reconciler.Svcs, which are read by key only (a cached List
// of Services would fail on the type anyway), and the index is another
// entry per Service (about 1 MiB at 11,000). The cache is configured with
// no selector for Services, so services lists and watches them all, as
// the ListerWatcher controller-runtime would have given.
func newInformer(services toolscache.ListerWatcher) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	return func(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, idx toolscache.Indexers) toolscache.SharedIndexInformer {
		if _, ok := obj.(*corev1.Service); ok {
			return toolscache.NewSharedIndexInformer(services, &reconciler.Svc{}, resync, toolscache.Indexers{})
		}
		return toolscache.NewSharedIndexInformer(lw, obj, resync, idx)
	}
}

// Run runs the controller until ctx ends (or leadership is lost).
func Run(ctx context.Context, restCfg *rest.Config, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	if cfg.Namespace == "" {
		return fmt.Errorf("namespace must be set")
	}
	if cfg.PprofAddr != "" && cfg.PprofAddr != "0" {
		if err := endpoint.CheckLoopback("--pprof-addr", cfg.PprofAddr); err != nil {
			return err
		}
	}
	rc := rest.CopyConfig(restCfg)
	if cfg.QPS > 0 {
		rc.QPS, rc.Burst = cfg.QPS, cfg.Burst
	}
	reg := cfg.Registry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	m, err := metrics.New(reg)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var gate *eventgate.Gate
	if cfg.EventMaxHold > 0 {
		gate = eventgate.New(eventgate.Options{Quiet: eventgate.DefaultQuiet, MaxHold: cfg.EventMaxHold,
			Observe: func(d time.Duration) { m.EventHold.Observe(d.Seconds()) }})
	}
	recorder, stopEvents, err := newRecorder(rc, gate)
	if err != nil {
		return err
	}
	defer stopEvents()
	services, err := serviceListWatch(rc, log)
	if err != nil {
		return err
	}
	opts := ctrl.Options{
		Scheme:                        scheme.Scheme,
		Metrics:                       metricsserver.Options{BindAddress: or(cfg.MetricsAddr, "0")},
		HealthProbeBindAddress:        or(cfg.HealthAddr, "0"),
		PprofBindAddress:              or(cfg.PprofAddr, "0"),
		LeaderElection:                cfg.LeaderElect,
		LeaderElectionID:              or(cfg.LeaderElectionID, "ecmplb-controller"),
		LeaderElectionNamespace:       cfg.Namespace,
		LeaderElectionReleaseOnCancel: true,
		NewCache:                      newQuickSyncCache,
		Cache: cache.Options{
			DefaultTransform: transform,
			NewInformer:      newInformer(services),
			ByObject: map[client.Object]cache.ByObject{
				&v1beta1.IPAddressPool{}: {Namespaces: map[string]cache.Config{cfg.Namespace: {}}},
			},
		},
	}
	webhooks := cfg.Webhook.Addr != "" && cfg.Webhook.Addr != "0"
	if cfg.LeaseDuration > 0 {
		opts.LeaseDuration = &cfg.LeaseDuration
	}
	if cfg.RenewDeadline > 0 {
		opts.RenewDeadline = &cfg.RenewDeadline
	}
	if cfg.RetryPeriod > 0 {
		opts.RetryPeriod = &cfg.RetryPeriod
	}
	mgr, err := ctrl.NewManager(rc, opts)
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if cfg.HealthAddr != "" && cfg.HealthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return err
		}
	}
	if webhooks {
		wo := cfg.Webhook
		if wo.Namespace == "" {
			wo.Namespace = cfg.Namespace
		}
		if wo.Logger == nil {
			wo.Logger = log.With("component", "webhook")
		}
		if err := webhook.Setup(mgr, wo); err != nil {
			return err
		}
	}
	var owner func(context.Context) (*metav1.OwnerReference, error)
	if cfg.DeploymentName != "" {
		owner = deploymentOwner(mgr.GetAPIReader(), cfg.Namespace, cfg.DeploymentName)
	}
	lease := ""
	if cfg.LeaderElect {
		lease = opts.LeaderElectionID
	}
	c, err := reconciler.Setup(mgr, reconciler.Options{
		LeaseName:               lease,
		PoolNamespace:           cfg.Namespace,
		LoadBalancerClass:       cfg.LoadBalancerClass,
		Workers:                 cfg.Workers,
		StatusInterval:          cfg.StatusInterval,
		PoolAnnotation:          cfg.PoolAnnotation,
		ConfigurationState:      cfg.ConfigurationState,
		ConfigurationStateOwner: owner,
		Logger:                  log,
		Recorder:                recorder,
		Writing:                 writing(gate),
		Metrics:                 m,
		SkipNameValidation:      cfg.SkipNameValidation,
	})
	if err != nil {
		return err
	}
	if cfg.Started != nil {
		cfg.Started(c)
	}
	log.Info("controller starting", "namespace", cfg.Namespace, "loadBalancerClass", cfg.LoadBalancerClass,
		"leaderElection", cfg.LeaderElect, "webhooks", webhooks, "qps", rc.QPS, "burst", rc.Burst, "workers", cfg.Workers)
	return mgr.Start(ctx)
}

// deploymentOwner reads the named Deployment's UID, uncached (the cache
// holds no Deployments, and one read per created object needs no watch).
func deploymentOwner(r client.Reader, namespace, name string) func(context.Context) (*metav1.OwnerReference, error) {
	return func(ctx context.Context) (*metav1.OwnerReference, error) {
		d := &appsv1.Deployment{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
			return nil, fmt.Errorf("deployment %s/%s (--deployment-name): %w", namespace, name, err)
		}
		return configstate.DeploymentOwner(name, d.UID), nil
	}
}

// eventCacheSize bounds the Event correlator's LRU caches.
const eventCacheSize = 256

// eventDrain bounds how long stopping waits for the Events still queued.
const eventDrain = 3 * time.Second

// newRecorder returns the recorder of the reconciler's Events. Event
// correlation keeps LRU caches of recent Events, by default 4,096 entries
// each: megabytes when every Service gets an Event. A Service's Events are
// a handful, seconds apart, so a small cache aggregates them just as well.
// It is the controller's own broadcaster (the manager's, shared by its
// several recorder providers, would send each Event once per provider).
//
// With a gate, Events wait at it while Service writes are in flight, and
// stopping opens it and waits (eventDrain at most) for those still queued.
func newRecorder(rc *rest.Config, gate *eventgate.Gate) (record.EventRecorder, func(), error) {
	// The core/v1 client only: the whole clientset would link (and page
	// in) a client for every API group.
	// Events in protobuf, as everything else the controller sends to
	// built-in types (TestEventsAreProtobuf).
	ec := rest.CopyConfig(rc)
	ec.ContentType = runtime.ContentTypeProtobuf
	ec.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := typedcorev1.NewForConfig(ec)
	if err != nil {
		return nil, nil, fmt.Errorf("events client: %w", err)
	}
	b := record.NewBroadcaster(record.WithCorrelatorOptions(record.CorrelatorOptions{LRUCacheSize: eventCacheSize}))
	var sink record.EventSink = &typedcorev1.EventSinkImpl{Interface: cs.Events("")}
	stop := b.Shutdown
	if gate != nil {
		sink = eventgate.Sink{EventSink: sink, Gate: gate}
		stop = func() {
			// The broadcaster abandons what it still holds once shut
			// down: the Events held go first, for a few seconds at most.
			gate.Open()
			gate.Drain(eventDrain)
			b.Shutdown()
		}
	}
	b.StartRecordingToSink(sink)
	var rec record.EventRecorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "ecmplb-controller"})
	if gate != nil {
		rec = eventgate.Recorder{EventRecorder: rec, Gate: gate}
	}
	return rec, stop, nil
}

// writing is the reconciler's hook for the gate (nil without one).
func writing(gate *eventgate.Gate) func() func() {
	if gate == nil {
		return nil
	}
	return gate.Writing
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
