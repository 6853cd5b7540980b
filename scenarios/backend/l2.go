package backend

import (
	"context"
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// ViaL2 is the Via of flows and streams sent from the L2 client, over the
// topology's L2 segment (layer2 mode), instead of the first client behind a
// ToR.
const ViaL2 = "l2"

// Links a cut-link fault can be limited to (Fault.Link).
const (
	LinkSegment = "segment"
	LinkL2      = "l2"
)

// L2 is implemented by backends that build the topology's L2 segment (the
// lab): a client on the segment resolves a Service IP to the MAC of the
// node answering ARP/NDP for it and sends that node its traffic.
type L2 interface {
	// WaitL2Owner waits, until ctx ends, for the L2 client's neighbour
	// entry for ip to hold node's MAC, sending ip a datagram every 100 ms
	// meanwhile as a client with traffic would (so the kernel resolves a
	// missing entry and re-validates a stale one). It returns when the
	// entry took that MAC, by the neighbour notification's timestamp, or
	// since when it already held it then and never lost it. flush first
	// removes the entry, so the client resolves afresh; since is then the
	// flush.
	WaitL2Owner(ctx context.Context, ip netip.Addr, node string, since time.Time, flush bool) (time.Time, error)
	// L2Flows is Flows sent from the L2 client.
	L2Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error)
	// StartL2Stream is Streamer.StartStream from the L2 client.
	StartL2Stream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error)
	// DiagnoseL2 lists the L2 client's neighbour events about ip since
	// since, each with the node its MAC names, for a failure message.
	DiagnoseL2(ip netip.Addr, since time.Time) string
}
