package lab

import "testing"

func TestScaleTopologyIsValid(t *testing.T) {
	for _, n := range []int{1, 3, 50, 200} {
		topo, err := ScaleTopology(n)
		if err != nil {
			t.Fatalf("ScaleTopology(%d): %v", n, err)
		}
		topo.SetDefaults()
		if err := topo.Validate(); err != nil {
			t.Fatalf("ScaleTopology(%d) is invalid: %v", n, err)
		}
		if len(topo.Nodes) != n {
			t.Fatalf("ScaleTopology(%d) has %d nodes", n, len(topo.Nodes))
		}
	}
	for _, n := range []int{0, 201} {
		if _, err := ScaleTopology(n); err == nil {
			t.Fatalf("ScaleTopology(%d) succeeded, want an error naming nodes", n)
		}
	}
}
