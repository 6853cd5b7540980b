package leader

import (
	"bytes"
	"crypto/sha256"
)

// metallbAssign reproduces MetalLB's layer 2 election (speaker/layer2_controller.go,
// ShouldAnnounce and sortL2Candidates, without L2Advertisement preference
// scores) for comparison: each Service on its own, its eligible nodes ordered
// by sha256(node + "#" + first IP) ascending, the first one announces.
func metallbAssign(svcs []Service) map[string]string {
	out := make(map[string]string, len(svcs))
	for _, s := range svcs {
		if len(s.Nodes) == 0 {
			continue
		}
		ip := s.IP.String()
		var best string
		var bestSum [sha256.Size]byte
		for i, n := range s.Nodes {
			sum := sha256.Sum256([]byte(n + "#" + ip))
			if i == 0 || bytes.Compare(sum[:], bestSum[:]) < 0 {
				best, bestSum = n, sum
			}
		}
		out[s.Key] = best
	}
	return out
}

// Both methods, for printing them side by side.
var methods = []struct {
	name   string
	assign func([]Service) map[string]string
}{
	{"ecmplb", assignMap},
	{"metallb", metallbAssign},
}

// assignMap is Assign keyed by Service: key to node, none for "".
func assignMap(svcs []Service) map[string]string {
	out := map[string]string{}
	for i, n := range Assign(svcs) {
		if n != "" {
			out[svcs[i].Key] = n
		}
	}
	return out
}
