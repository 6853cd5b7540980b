package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

var _ backend.Streamer = Backend{}

// StartStream implements backend.Streamer: every node owns dst's address
// (as kube-proxy would) and answers the stream's line protocol on it with
// its own name, so a connection the fabric moves to another node is reset
// there; the connections start in the first client's namespace.
func (b Backend) StartStream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	return b.startStreamFrom(ctx, b.clientName(), proto, dst, cfg)
}

// startStreamFrom is StartStream from the named client (the L2 client too).
func (b Backend) startStreamFrom(ctx context.Context, client, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("lab: a stream is TCP only, not %q", proto)
	}
	if client == "" {
		return nil, fmt.Errorf("lab: the topology has no client")
	}
	var closers []func()
	undo := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, n := range b.NodeNames() {
		if err := b.Fabric.AddNodeAddress(n, dst.Addr()); err != nil {
			undo()
			return nil, err
		}
		node := n
		closers = append(closers, func() { _ = b.Fabric.DelNodeAddress(node, dst.Addr()) })
		var ln net.Listener
		err := netns.Do(b.Fabric.NodeNetNS(n), func() error {
			var err error
			ln, err = net.Listen("tcp", dst.String())
			return err
		})
		if err != nil {
			undo()
			return nil, fmt.Errorf("lab: stream responder on %s %v: %w", n, dst, err)
		}
		r := stream.Serve(ln, n)
		closers = append(closers, func() { _ = r.Close() })
	}
	dial := func(ctx context.Context) (stream.Conn, error) {
		var c net.Conn
		err := netns.Do(b.Fabric.NetNS(client), func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, "tcp", dst.String())
			return err
		})
		if err != nil {
			return nil, err
		}
		return stream.NewLineConn(c), nil
	}
	return stream.Start(ctx, cfg, dial, undo)
}
