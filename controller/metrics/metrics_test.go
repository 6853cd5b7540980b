package metrics

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/ecmplb/ecmplb/controller/allocator"
)

// fakePools is an allocator's pool view.
type fakePools map[string]allocator.Stats

func (f fakePools) Pools() []string {
	var out []string
	for k := range f {
		out = append(out, k)
	}
	return out
}

func (f fakePools) Stats(name string) (allocator.Stats, bool) { s, ok := f[name]; return s, ok }

// The allocator's gauges are read from the allocator at scrape time, under
// MetalLB's names: both families together, and each alone.
func TestAllocatorGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := count(reg, "metallb_allocator_addresses_total"); err != nil || n != 0 {
		t.Fatalf("before an allocator is set: %d series, %v", n, err)
	}
	pools := fakePools{
		"gold": {Total: [2]int64{256, 1 << 20}, Assigned: [2]int64{3, 2}},
		"v4":   {Total: [2]int64{16, 0}},
	}
	m.SetPools(pools)
	want := `
# HELP metallb_allocator_addresses_in_use_total Number of IP addresses in use, per pool.
# TYPE metallb_allocator_addresses_in_use_total gauge
metallb_allocator_addresses_in_use_total{pool="gold"} 5
metallb_allocator_addresses_in_use_total{pool="v4"} 0
# HELP metallb_allocator_addresses_total Number of usable IP addresses, per pool.
# TYPE metallb_allocator_addresses_total gauge
metallb_allocator_addresses_total{pool="gold"} 1.048832e+06
metallb_allocator_addresses_total{pool="v4"} 16
# HELP metallb_allocator_ipv4_addresses_in_use_total Number of IPv4 addresses in use, per pool.
# TYPE metallb_allocator_ipv4_addresses_in_use_total gauge
metallb_allocator_ipv4_addresses_in_use_total{pool="gold"} 3
metallb_allocator_ipv4_addresses_in_use_total{pool="v4"} 0
# HELP metallb_allocator_ipv4_addresses_total Number of usable IPv4 addresses, per pool.
# TYPE metallb_allocator_ipv4_addresses_total gauge
metallb_allocator_ipv4_addresses_total{pool="gold"} 256
metallb_allocator_ipv4_addresses_total{pool="v4"} 16
# HELP metallb_allocator_ipv6_addresses_in_use_total Number of IPv6 addresses in use, per pool.
# TYPE metallb_allocator_ipv6_addresses_in_use_total gauge
metallb_allocator_ipv6_addresses_in_use_total{pool="gold"} 2
metallb_allocator_ipv6_addresses_in_use_total{pool="v4"} 0
# HELP metallb_allocator_ipv6_addresses_total Number of usable IPv6 addresses, per pool.
# TYPE metallb_allocator_ipv6_addresses_total gauge
metallb_allocator_ipv6_addresses_total{pool="gold"} 1.048576e+06
metallb_allocator_ipv6_addresses_total{pool="v4"} 0
`
	names := []string{"metallb_allocator_addresses_in_use_total", "metallb_allocator_addresses_total",
		"metallb_allocator_ipv4_addresses_in_use_total", "metallb_allocator_ipv4_addresses_total",
		"metallb_allocator_ipv6_addresses_in_use_total", "metallb_allocator_ipv6_addresses_total"}
	if err := compare(reg, want, names...); err != nil {
		t.Fatal(err)
	}
	// A pool removed from the allocator is gone from the next scrape.
	delete(pools, "v4")
	if n, _ := count(reg, "metallb_allocator_addresses_total"); n != 1 {
		t.Fatalf("after removing a pool: %d series, want 1", n)
	}
	// Totals saturate rather than overflow.
	pools["huge"] = allocator.Stats{Total: [2]int64{1 << 62, 1<<63 - 1}}
	if err := compare(reg, `
# HELP metallb_allocator_addresses_total Number of usable IP addresses, per pool.
# TYPE metallb_allocator_addresses_total gauge
metallb_allocator_addresses_total{pool="gold"} 1.048832e+06
metallb_allocator_addresses_total{pool="huge"} 9.223372036854776e+18
`, "metallb_allocator_addresses_total"); err != nil {
		t.Fatal(err)
	}
}

// config_loaded_bool stays 1 once a configuration loaded; config_stale_bool
// follows the newest configuration.
func TestConfigState(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	check := func(loaded, stale float64) {
		t.Helper()
		if got := value(t, reg, "metallb_k8s_client_config_loaded_bool"); got != loaded {
			t.Errorf("config_loaded_bool = %v, want %v", got, loaded)
		}
		if got := value(t, reg, "metallb_k8s_client_config_stale_bool"); got != stale {
			t.Errorf("config_stale_bool = %v, want %v", got, stale)
		}
	}
	// A standby replica has applied nothing: no series, so MetalLB's
	// MetalLBConfigNotLoaded alert (config_loaded_bool == 0) does not fire
	// for it.
	for _, name := range []string{"metallb_k8s_client_config_loaded_bool", "metallb_k8s_client_config_stale_bool"} {
		if n, err := count(reg, name); err != nil || n != 0 {
			t.Fatalf("%s before any configuration: %d series, %v", name, n, err)
		}
	}
	m.ConfigApplied(false) // first configuration has a rejected pool
	check(0, 1)
	m.ConfigApplied(true)
	check(1, 0)
	m.ConfigApplied(false)
	check(1, 1)
}

func TestHeld(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := count(reg, "ecmplb_controller_services_held"); err != nil || n != 0 {
		t.Fatalf("before SetHeld: %d series, %v", n, err)
	}
	held := 7
	m.SetHeld(func() int { return held })
	if got := value(t, reg, "ecmplb_controller_services_held"); got != 7 {
		t.Fatalf("services_held = %v, want 7", got)
	}
	held = 0
	if got := value(t, reg, "ecmplb_controller_services_held"); got != 0 {
		t.Fatalf("services_held = %v, want 0 (read at scrape)", got)
	}
}

// exposition renders the named families of reg as the text format.
func exposition(reg *prometheus.Registry, names ...string) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, mf := range mfs {
		if slices.Contains(names, mf.GetName()) {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				return "", err
			}
		}
	}
	return b.String(), nil
}

func compare(reg *prometheus.Registry, want string, names ...string) error {
	got, err := exposition(reg, names...)
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		return fmt.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	return nil
}

func count(reg *prometheus.Registry, name string) (int, error) {
	mfs, err := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric()), err
		}
	}
	return 0, err
}

func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}
