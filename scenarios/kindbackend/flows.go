package kindbackend

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// flowTimeout bounds one flow (as in the lab).
const flowTimeout = 2 * time.Second

// Flows implements backend.Backend with real traffic: n TCP connections
// (each from its own source port) from the first client to dst, through the
// client's ToR's kernel ECMP route, a node's kube-proxy and an echo pod,
// each an HTTP request whose answer names the pod's node. UDP is not
// offered: the echo pods serve TCP only, and a Service forwards only the
// protocols of its ports.
func (b *Backend) Flows(ctx context.Context, proto string, dst netip.AddrPort, n int) (map[string]int, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("kind: %s flows: %w (the echo pods answer TCP only; use proto: tcp)", proto, ErrNotOnKind)
	}
	if len(b.topo.Clients) == 0 {
		return nil, fmt.Errorf("kind: the topology has no client")
	}
	return b.flowsFrom(ctx, b.fabric.NetNS(b.topo.Clients[0].Name), dst, n)
}

// flowsFrom is Flows (TCP) from the client in namespace ns.
func (b *Backend) flowsFrom(ctx context.Context, ns string, dst netip.AddrPort, n int) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, flowTimeout)
	defer cancel()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := b.topoName[httpNode(ctx, ns, dst)]
			mu.Lock()
			counts[who]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return counts, nil
}

// httpNode opens a connection to dst from inside namespace ns, asks the echo
// server who it is and returns its node ("" for no answer).
func httpNode(ctx context.Context, ns string, dst netip.AddrPort) string {
	var c net.Conn
	err := netns.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", dst.String())
		return err
	})
	if err != nil {
		return ""
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+dst.String()+"/", nil)
	if err != nil {
		return ""
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		return ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var reply struct {
		Node string `json:"node"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&reply) != nil {
		return ""
	}
	return reply.Node
}
