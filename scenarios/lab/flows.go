package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// prepareDataPlaneProto makes every node own dst's address (as kube-proxy
// would) and answer on it with its name, over UDP or TCP; the returned
// function undoes it.
func (l *Lab) prepareDataPlaneProto(proto string, dst netip.AddrPort) (func(), error) {
	var closers []func()
	undo := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, n := range l.NodeNames() {
		if err := l.Fabric.AddNodeAddress(n, dst.Addr()); err != nil {
			undo()
			return nil, err
		}
		node := n
		closers = append(closers, func() { _ = l.Fabric.DelNodeAddress(node, dst.Addr()) })
		var closer io.Closer
		var err error
		if proto == "tcp" {
			closer, err = l.startTCPResponder(n, dst)
		} else {
			closer, err = l.Fabric.StartResponder(n, dst)
		}
		if err != nil {
			undo()
			return nil, err
		}
		closers = append(closers, func() { _ = closer.Close() })
	}
	return undo, nil
}

// tcpResponder accepts TCP connections inside a node's namespace and
// answers each with the node's name.
type tcpResponder struct {
	ln net.Listener
	wg sync.WaitGroup
}

func (l *Lab) startTCPResponder(node string, addr netip.AddrPort) (*tcpResponder, error) {
	r := &tcpResponder{}
	err := netns.Do(l.Fabric.NodeNetNS(node), func() error {
		ln, err := net.Listen("tcp", addr.String())
		r.ln = ln
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("TCP responder on %s %v: %w", node, addr, err)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := r.ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write([]byte(node))
			_ = c.Close()
		}
	}()
	return r, nil
}

func (r *tcpResponder) Close() error {
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

// tcpFlows opens n TCP connections (each its own source port) from the
// first client to dst and counts them by the node that answered; a
// connection that fails or gets no answer within timeout counts under "".
func (l *Lab) tcpFlows(ctx context.Context, dst netip.AddrPort, n int, timeout time.Duration) (map[string]int, error) {
	return l.tcpFlowsFrom(ctx, l.clientName(), dst, n, timeout)
}

// tcpFlowsFrom is tcpFlows from the named client (the L2 client too).
func (l *Lab) tcpFlowsFrom(ctx context.Context, client string, dst netip.AddrPort, n int, timeout time.Duration) (map[string]int, error) {
	if client == "" {
		return nil, fmt.Errorf("the topology has no client")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := ""
			var c net.Conn
			err := netns.Do(l.Fabric.NetNS(client), func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, "tcp", dst.String())
				return err
			})
			if err == nil {
				if dl, ok := ctx.Deadline(); ok {
					_ = c.SetDeadline(dl)
				}
				b, _ := io.ReadAll(c)
				who = string(b)
				_ = c.Close()
			}
			mu.Lock()
			counts[who]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts, nil
}
