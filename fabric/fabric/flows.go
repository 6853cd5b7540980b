package fabric

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// AddNodeAddress puts addr (as a host route, /32 or /128) on the loopback of a node so
// the node accepts packets for it, as it must for a Service IP it announces.
func (f *Fabric) AddNodeAddress(node string, addr netip.Addr) error {
	return netns.AddAddress(f.NetNS(node), "lo", netip.PrefixFrom(addr, addr.BitLen()))
}

// DelNodeAddress removes an address added with AddNodeAddress.
func (f *Fabric) DelNodeAddress(node string, addr netip.Addr) error {
	return netns.DelAddress(f.NetNS(node), "lo", netip.PrefixFrom(addr, addr.BitLen()))
}

// Responder answers UDP datagrams inside a node's namespace with the node's name.
type Responder struct {
	conn net.PacketConn
	wg   sync.WaitGroup
}

// StartResponder listens on UDP addr inside the node's namespace (the socket is
// created there, the goroutine serving it may run anywhere). addr must be local to the
// node (e.g. a Service IP added with AddNodeAddress), or unspecified.
func (f *Fabric) StartResponder(node string, addr netip.AddrPort) (*Responder, error) {
	r := &Responder{}
	err := netns.Do(f.NetNS(node), func() error {
		c, err := net.ListenPacket("udp", addr.String())
		r.conn = c
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("responder on %s %v: %w", node, addr, err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1500)
		for {
			_, from, err := r.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = r.conn.WriteTo([]byte(node), from)
		}
	}()
	return r, nil
}

// Close stops the responder.
func (r *Responder) Close() error {
	err := r.conn.Close()
	r.wg.Wait()
	return err
}

// SendFlows sends n UDP flows (one socket, so one source port, each) from a client's
// namespace to dst, and counts the replies by the name the answering node put in them;
// flows without a reply within the timeout count under "". With the ToR hashing on L4
// (fib_multipath_hash_policy=1) the flows spread across the nodes that announce dst.
// The L2 client (L2Client) sends over the L2 segment, to the node whose MAC it
// resolved dst to.
func (f *Fabric) SendFlows(ctx context.Context, client string, dst netip.AddrPort, n int, timeout time.Duration) (map[string]int, error) {
	if _, ok := f.state.Topology.Client(client); !ok && (client == "" || client != f.L2Client()) {
		return nil, fmt.Errorf("fabric %s: no client %q", f.state.Instance, client)
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	conns := make([]net.PacketConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	err := netns.Do(f.NetNS(client), func() error {
		for range n {
			network := "udp4"
			if dst.Addr().Is6() {
				network = "udp6"
			}
			c, err := net.ListenPacket(network, ":0")
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client %s sockets: %w", client, err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var errs []error
	for _, c := range conns {
		wg.Add(1)
		go func(c net.PacketConn) {
			defer wg.Done()
			name := ""
			_ = c.SetDeadline(deadline)
			if _, err := c.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(dst)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			} else {
				buf := make([]byte, 256)
				if k, _, err := c.ReadFrom(buf); err == nil {
					name = string(buf[:k])
				}
			}
			mu.Lock()
			counts[name]++
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	return counts, errors.Join(errs...)
}
