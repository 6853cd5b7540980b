package kindconfig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
)

// run runs a command and returns its trimmed stdout; the error carries
// stderr.
func run(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// BridgeName is the Linux bridge of the Docker network called network:
// fixed (not Docker's random br-<id>) so the forwarding rule can name it,
// and at most 15 characters.
func BridgeName(network string) string {
	h := sha256.Sum256([]byte(network))
	return "elbk-" + hex.EncodeToString(h[:])[:8]
}

// forwardRule is the iptables rule (in Docker's DOCKER-USER chain) that
// lets frames between two containers of the network pass the host's
// FORWARD chain. Without it, Docker's isolation rules for --internal
// networks drop every bridged frame whose source or destination is outside
// the network's subnet — pod addresses and, later, LoadBalancer IPs — since
// bridged traffic traverses iptables here (bridge-nf-call-iptables=1). The
// rule matches traffic that enters and leaves the same bridge, so nothing
// it admits can reach another interface of the host.
func forwardRule(bridge string) []string {
	return []string{"-i", bridge, "-o", bridge, "-m", "comment", "--comment", "ecmplb kind network " + bridge, "-j", "ACCEPT"}
}

// createNetwork creates the internal Docker network, addressed as plan says
// (after checking the host has no route into its subnet) and labelled with
// its creator (for RemoveStale), and its forwarding rule.
func createNetwork(ctx context.Context, name string, plan NetworkPlan, owner creator) error {
	if err := checkSubnetFree(plan.Subnet); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	bridge := BridgeName(name)
	args := append([]string{"network", "create", "--internal", "-o", "com.docker.network.bridge.name=" + bridge}, owner.labelArgs()...)
	args = append(args, plan.dockerArgs()...)
	if _, err := run(ctx, nil, "docker", append(args, name)...); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	rule := append([]string{"-w", "-I", "DOCKER-USER"}, forwardRule(bridge)...)
	if _, err := run(ctx, nil, "iptables", rule...); err != nil {
		return fmt.Errorf("network %s: forwarding rule: %w", name, err)
	}
	return nil
}

// removeNetwork removes the forwarding rule (every copy) and the network;
// what does not exist is not an error.
func removeNetwork(ctx context.Context, name string) error {
	bridge := BridgeName(name)
	for {
		args := append([]string{"-w", "-D", "DOCKER-USER"}, forwardRule(bridge)...)
		if _, err := run(ctx, nil, "iptables", args...); err != nil {
			break // no (more) such rule
		}
	}
	if _, err := run(ctx, nil, "docker", "network", "inspect", name); err != nil {
		return nil
	}
	// A leftover network may still have endpoints (an L2 network's nodes
	// belong to another cluster network); docker refuses to remove it then.
	if err := disconnectAll(ctx, name); err != nil {
		return err
	}
	if _, err := run(ctx, nil, "docker", "network", "rm", name); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	return nil
}

// containerIP is the address of a container on a network.
func containerIP(ctx context.Context, container, network string) (netip.Addr, error) {
	s, err := run(ctx, nil, "docker", "inspect", "--format",
		fmt.Sprintf(`{{ (index .NetworkSettings.Networks %q).IPAddress }}`, network), container)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("container %s on %s: address %q: %w", container, network, s, err)
	}
	return a, nil
}
