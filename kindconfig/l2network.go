package kindconfig

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// L2NetworkName is the Docker network of a cluster's layer 2 segment (the
// scenarios' topology.l2): a second internal network beside the cluster's,
// which the nodes join with a second interface.
func L2NetworkName(cluster string) string { return cluster + "-l2" }

// CreateL2Network creates the internal network name on subnet, its host
// bridge at gateway (Docker gives a bridge network's gateway to the host
// end; pick an address nothing else on the segment uses), labelled with
// its creator like the cluster's network, so RemoveStale removes it after a
// run that ended, with its forwarding rule. It returns the bridge's name.
func CreateL2Network(ctx context.Context, cluster, name string, subnet netip.Prefix, gateway netip.Addr) (string, error) {
	owner, err := thisProcess(cluster)
	if err != nil {
		return "", err
	}
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() > 28 || !subnet.Contains(gateway) {
		return "", fmt.Errorf("l2 network %s: subnet %v (IPv4, /28 or shorter) and gateway %v inside it", name, subnet, gateway)
	}
	// Docker picks addresses in the IP range only for containers that name
	// none; every node here names its own. The range is the gateway's /32.
	plan := NetworkPlan{Subnet: subnet, Gateway: gateway, IPRange: netip.PrefixFrom(gateway.Next(), 32)}
	if !subnet.Contains(gateway.Next()) {
		plan.IPRange = netip.PrefixFrom(gateway.Prev(), 32)
	}
	if err := createNetwork(ctx, name, plan, owner); err != nil {
		return "", err
	}
	return BridgeName(name), nil
}

// ConnectL2 joins a node container to network at addr (a new interface in
// the container, which the caller finds by its address).
func ConnectL2(ctx context.Context, network, container string, addr netip.Addr) error {
	if _, err := run(ctx, nil, "docker", "network", "connect", "--ip", addr.String(), network, container); err != nil {
		return fmt.Errorf("join %s to %s at %v: %w", container, network, addr, err)
	}
	return nil
}

// RemoveL2Network disconnects every container from network and removes it
// with its forwarding rule; a network that does not exist is no error.
func RemoveL2Network(ctx context.Context, network string) error {
	if err := disconnectAll(ctx, network); err != nil {
		return err
	}
	return removeNetwork(ctx, network)
}

// disconnectAll takes every container off network (docker refuses to remove
// a network with endpoints).
func disconnectAll(ctx context.Context, network string) error {
	out, err := run(ctx, nil, "docker", "network", "inspect", "--format", "{{range $id, $c := .Containers}}{{$id}} {{end}}", network)
	if err != nil {
		return nil // no such network
	}
	for _, id := range strings.Fields(out) {
		if _, err := run(ctx, nil, "docker", "network", "disconnect", "-f", network, id); err != nil {
			return fmt.Errorf("network %s: %w", network, err)
		}
	}
	return nil
}
