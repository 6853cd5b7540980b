package lab

import "testing"

func TestMetricValues(t *testing.T) {
	page := []byte(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 123
go_goroutines_other 7
go_memstats_heap_inuse_bytes 8.388608e+06
go_gc_duration_seconds{quantile="0"} 1e-05
`)
	m, err := metricValues(page, "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 123 || m["go_memstats_heap_inuse_bytes"] != 8388608 {
		t.Fatalf("got %v", m)
	}
	if _, err := metricValues(page, "go_threads"); err == nil {
		t.Fatal("missing metric not reported")
	}
}

func TestFaultTopologyRunsBFDOnBothToRs(t *testing.T) {
	topo := FaultTopology()
	topo.SetDefaults()
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, n := range topo.Nodes {
		for _, tor := range topo.ToRs {
			if !n.BFDWith(tor.Name) {
				t.Errorf("%s runs no BFD with %s", n.Name, tor.Name)
			}
		}
	}
}
