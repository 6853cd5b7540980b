package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scalePool is the scale check's address pool: all of 198.18.0.0/15, the
// benchmarking range of RFC 2544, never routed outside the fabric's
// namespaces.
const scalePool = "198.18.0.0/15"

// scaleNodePorts is the apiserver's NodePort range in the scale check. A
// Service of type LoadBalancer with externalTrafficPolicy Local always gets a
// healthCheckNodePort (allocateLoadBalancerNodePorts: false does not spare
// it), and the default range (30000-32767) holds only 2,768. Nothing listens
// on these ports in the lab: there is no kube-proxy.
const scaleNodePorts = "20000-64999"

// maxScaleNodes is what ScaleTopology's node segment (10.0.0.21 upwards in a
// /24) holds.
const maxScaleNodes = 200

// poolSize is the number of addresses of a pool CIDR (every address of it can
// be allocated: the scale pool does not set avoidBuggyIPs).
func poolSize(cidr string) (int, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return 0, err
	}
	host := p.Addr().BitLen() - p.Bits()
	if host > 30 {
		return 0, fmt.Errorf("pool %s: too large to count", cidr)
	}
	return 1 << host, nil
}

// portRangeSize is the number of ports of a range "FIRST-LAST".
func portRangeSize(r string) (int, error) {
	a, b, ok := strings.Cut(r, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || last < first {
		return 0, fmt.Errorf("port range %q is not FIRST-LAST within 1-65535", r)
	}
	return last - first + 1, nil
}

// checkScaleSize checks the sizes asked of the scale check against what the
// topology and the pool hold.
func checkScaleSize(nodes, services, endpoints int) error {
	if nodes < 1 || nodes > maxScaleNodes {
		return fmt.Errorf("nodes: %d is outside 1-%d", nodes, maxScaleNodes)
	}
	size, err := poolSize(scalePool)
	if err != nil {
		return err
	}
	if services < 1 || services > size {
		return fmt.Errorf("services: %d is outside 1-%d (the pool %s)", services, size, scalePool)
	}
	ports, err := portRangeSize(scaleNodePorts)
	if err != nil {
		return err
	}
	if services > ports {
		return fmt.Errorf("services: %d is more than the %d health-check NodePorts of %s", services, ports, scaleNodePorts)
	}
	if endpoints < 1 || endpoints > nodes {
		return fmt.Errorf("endpoints: %d is outside 1-%d", endpoints, nodes)
	}
	return nil
}

// scaleServiceName names the i-th Service of the scale check; the names sort
// in the order they are written.
func scaleServiceName(i int) string { return fmt.Sprintf("svc-%06d", i) }

// scaleEndpoints spreads the Services' endpoints evenly: the i-th Service has
// one ready endpoint on each of the k nodes that follow node i (wrapping).
func scaleEndpoints(services, k int, nodes []string) map[string][]string {
	want := make(map[string][]string, services)
	for i := range services {
		on := make([]string, 0, k)
		for j := range k {
			on = append(on, nodes[(i+j)%len(nodes)])
		}
		want[scaleServiceName(i)] = on
	}
	return want
}

// quantiles returns the q-quantiles (nearest rank) of ds, sorted in place.
func quantiles(ds []time.Duration, qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if len(ds) == 0 {
		return out
	}
	slices.Sort(ds)
	for i, q := range qs {
		r := int(q*float64(len(ds))+0.999999) - 1
		out[i] = ds[min(max(r, 0), len(ds)-1)]
	}
	return out
}
