package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

var _ backend.L2 = Backend{}

// WaitL2Owner implements backend.L2 with the lab's neighbour watcher on the
// L2 client (started at Up, so a change before the call is on record).
func (b Backend) WaitL2Owner(ctx context.Context, ip netip.Addr, node string, since time.Time, flush bool) (time.Time, error) {
	at, err := b.l2Observer().WaitL2Owner(ctx, ip, node, since, flush)
	if err != nil {
		return at, fmt.Errorf("lab: %w", err)
	}
	return at, nil
}

// l2Observer watches the L2 client for both backends.
func (b Backend) l2Observer() backend.L2Observer {
	return backend.L2Observer{Fabric: b.Fabric, Watch: b.l2watch}
}

// L2Flows implements backend.L2: every node owns dst and answers on it (as
// for Flows); the L2 client sends to the node whose MAC it resolved.
func (b Backend) L2Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error) {
	client := b.Fabric.L2Client()
	if client == "" {
		return nil, errors.New("lab: the topology has no l2 segment")
	}
	undo, err := b.prepareDataPlaneProto(proto, dst)
	if err != nil {
		return nil, err
	}
	defer undo()
	switch proto {
	case "udp", "":
		return b.Fabric.SendFlows(ctx, client, dst, n, 2*time.Second)
	case "tcp":
		return b.tcpFlowsFrom(ctx, client, dst, n, 2*time.Second)
	}
	return nil, fmt.Errorf("flows: protocol %q is neither udp nor tcp", proto)
}

// StartL2Stream implements backend.L2.
func (b Backend) StartL2Stream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	client := b.Fabric.L2Client()
	if client == "" {
		return nil, errors.New("lab: the topology has no l2 segment")
	}
	return b.startStreamFrom(ctx, client, proto, dst, cfg)
}

// DiagnoseL2 implements backend.L2.
func (b Backend) DiagnoseL2(ip netip.Addr, since time.Time) string {
	return b.l2Observer().DiagnoseL2(ip, since)
}
