// Package metrics defines the controller's Prometheus metrics.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus collectors.
type Metrics struct {
	// AddressesTotal is the number of usable addresses per pool and family.
	AddressesTotal *prometheus.GaugeVec
	// AddressesInUse is the number of assigned addresses per pool and family.
	AddressesInUse *prometheus.GaugeVec
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
}

// New creates the metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		AddressesTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecmplb_controller_pool_addresses_total",
			Help: "Usable addresses in an IPAddressPool (saturates at 2^63-1).",
		}, []string{"pool", "family"}),
		AddressesInUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecmplb_controller_pool_addresses_in_use",
			Help: "Addresses of an IPAddressPool assigned to Services.",
		}, []string{"pool", "family"}),
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
	}
	for _, c := range []prometheus.Collector{m.AddressesTotal, m.AddressesInUse, m.Allocations,
		m.Releases, m.AllocationErrors, m.ConfigErrors, m.OutsidePools} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
