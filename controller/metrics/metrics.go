// Package metrics defines the controller's Prometheus metrics: MetalLB's
// names (metallb_allocator_*, metallb_k8s_client_*) for what MetalLB's
// controller exposes, so its dashboards and alerts keep working, and
// ecmplb_controller_* for what MetalLB has no metric for.
package metrics

import (
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/controller/allocator"
)

// Pools is the allocator's view of its pools, read at scrape time.
type Pools interface {
	// Pools returns the names of the accepted pools.
	Pools() []string
	// Stats returns a pool's counters (false: no such pool any more).
	Stats(name string) (allocator.Stats, bool)
}

// Metrics are the controller's Prometheus collectors.
type Metrics struct {
	// Allocations counts Services given new IPs, per pool.
	Allocations *prometheus.CounterVec
	// Releases counts Services whose IPs were released.
	Releases prometheus.Counter
	// AllocationErrors counts failed allocations per reason.
	AllocationErrors *prometheus.CounterVec
	// ConfigErrors counts rejected objects per kind (IPAddressPool, Service).
	ConfigErrors *prometheus.CounterVec
	// OutsidePools is the number of allocated IPs that lie in no pool.
	OutsidePools prometheus.Gauge
	// Updates counts processed object updates (metallb_k8s_client_updates_total):
	// every Service and IPAddressPool reconcile.
	Updates prometheus.Counter
	// UpdateErrors counts those that failed or were rejected
	// (metallb_k8s_client_update_errors_total).
	UpdateErrors prometheus.Counter
	// EventHold observes how long each Event waited for the Service writes
	// in flight before it was sent (package eventgate).
	EventHold prometheus.Histogram

	// applied: this replica has applied a set of pools (it leads); loaded:
	// one had none rejected; stale: the newest has some rejected.
	applied, loaded, stale atomic.Bool
	pools                  atomic.Pointer[Pools]
	held                   atomic.Pointer[func() int]
}

// New creates the metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Allocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecmplb_controller_allocations_total",
			Help: "Services given new IPs, by pool.",
		}, []string{"pool"}),
		Releases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecmplb_controller_releases_total",
			Help: "Services whose IPs were released.",
		}),
		AllocationErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecmplb_controller_allocation_errors_total",
			Help: "Failed allocations, by reason.",
		}, []string{"reason"}),
		ConfigErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecmplb_controller_config_errors_total",
			Help: "Objects rejected for bad input, by kind.",
		}, []string{"kind"}),
		OutsidePools: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ecmplb_controller_ips_outside_pools",
			Help: "Allocated IPs that lie in no IPAddressPool (kept, not reassigned).",
		}),
		Updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metallb_k8s_client_updates_total",
			Help: "Number of Kubernetes object updates processed (Service and IPAddressPool reconciles).",
		}),
		UpdateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metallb_k8s_client_update_errors_total",
			Help: "Number of Kubernetes object updates that failed or were rejected.",
		}),
		EventHold: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ecmplb_controller_event_hold_seconds",
			Help:    "How long each Event waited for the Service writes in flight before it was sent (--event-max-hold bounds it).",
			Buckets: []float64{0.01, 0.1, 0.25, 0.5, 1, 2, 5, 10},
		}),
	}
	for _, c := range []prometheus.Collector{m.Allocations, m.Releases, m.AllocationErrors, m.ConfigErrors,
		m.OutsidePools, m.Updates, m.UpdateErrors, m.EventHold, poolCollector{m}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// SetPools makes the allocator's pools the source of the metallb_allocator_*
// gauges (until then they have no series).
func (m *Metrics) SetPools(p Pools) { m.pools.Store(&p) }

// SetHeld makes f the source of ecmplb_controller_services_held: the
// Services waiting in line outside the work queue (until then it has no
// series).
func (m *Metrics) SetHeld(f func() int) { m.held.Store(&f) }

// ConfigApplied records the verdict on the newest set of IPAddressPools:
// clean is true when none was rejected.
func (m *Metrics) ConfigApplied(clean bool) {
	if clean {
		m.loaded.Store(true)
	}
	m.stale.Store(!clean)
	m.applied.Store(true)
}

var (
	descTotal = prometheus.NewDesc("metallb_allocator_addresses_total",
		"Number of usable IP addresses, per pool.", []string{"pool"}, nil)
	descInUse = prometheus.NewDesc("metallb_allocator_addresses_in_use_total",
		"Number of IP addresses in use, per pool.", []string{"pool"}, nil)
	descLoaded = prometheus.NewDesc("metallb_k8s_client_config_loaded_bool",
		"1 once the IPAddressPools loaded with none rejected (no series on a standby replica).", nil, nil)
	descStale = prometheus.NewDesc("metallb_k8s_client_config_stale_bool",
		"1 while some IPAddressPool is rejected: the newest configuration did not fully load (no series on a standby replica).", nil, nil)
	descHeld = prometheus.NewDesc("ecmplb_controller_services_held",
		"Services waiting in line outside the work queue: settled ones for their re-check (after a restart: all of them), and those beyond twice the workers that wait for an IP; workqueue_depth counts those let in.", nil, nil)
	descFamTotal = [2]*prometheus.Desc{
		prometheus.NewDesc("metallb_allocator_ipv4_addresses_total", "Number of usable IPv4 addresses, per pool.", []string{"pool"}, nil),
		prometheus.NewDesc("metallb_allocator_ipv6_addresses_total", "Number of usable IPv6 addresses, per pool.", []string{"pool"}, nil),
	}
	descFamInUse = [2]*prometheus.Desc{
		prometheus.NewDesc("metallb_allocator_ipv4_addresses_in_use_total", "Number of IPv4 addresses in use, per pool.", []string{"pool"}, nil),
		prometheus.NewDesc("metallb_allocator_ipv6_addresses_in_use_total", "Number of IPv6 addresses in use, per pool.", []string{"pool"}, nil),
	}
)

// poolCollector reads the allocator's counters at scrape time, so the gauges
// can never disagree with the allocations (nor outlive a removed pool), and
// the configuration state once this replica applied one.
type poolCollector struct{ m *Metrics }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLoaded
	ch <- descStale
	ch <- descTotal
	ch <- descInUse
	ch <- descHeld
	for f := range 2 {
		ch <- descFamTotal[f]
		ch <- descFamInUse[f]
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.applied.Load() {
		ch <- prometheus.MustNewConstMetric(descLoaded, prometheus.GaugeValue, boolValue(c.m.loaded.Load()))
		ch <- prometheus.MustNewConstMetric(descStale, prometheus.GaugeValue, boolValue(c.m.stale.Load()))
	}
	if h := c.m.held.Load(); h != nil {
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64((*h)()))
	}
	p := c.m.pools.Load()
	if p == nil {
		return
	}
	for _, name := range (*p).Pools() {
		s, ok := (*p).Stats(name)
		if !ok {
			continue
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		gauge(descTotal, float64(satAdd(s.Total[0], s.Total[1])))
		gauge(descInUse, float64(satAdd(s.Assigned[0], s.Assigned[1])))
		for f := range 2 {
			gauge(descFamTotal[f], float64(s.Total[f]))
			gauge(descFamInUse[f], float64(s.Assigned[f]))
		}
	}
}

// satAdd adds two non-negative counts, saturating at math.MaxInt64 as the
// allocator's counts do.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
