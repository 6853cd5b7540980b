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
	"strconv"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

var _ backend.Streamer = (*Backend)(nil)

// StartStream implements backend.Streamer with the echo pods' HTTP server:
// each connection of the stream is one kept-alive HTTP connection from the
// first client through the ToR's ECMP route and a node's kube-proxy to an
// echo pod, and each message a GET of /stream/<seq>, whose answer names the
// pod's node and echoes the path. A connection moved to another node is
// reset there (no pod has it).
func (b *Backend) StartStream(ctx context.Context, proto string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	if proto != "tcp" {
		return nil, fmt.Errorf("kind: %s stream: %w (the echo pods answer TCP only; use proto: tcp)", proto, ErrNotOnKind)
	}
	if len(b.topo.Clients) == 0 {
		return nil, fmt.Errorf("kind: the topology has no client")
	}
	return b.streamFrom(ctx, b.fabric.NetNS(b.topo.Clients[0].Name), dst, cfg)
}

// streamFrom is StartStream (TCP) from the client in namespace ns.
func (b *Backend) streamFrom(ctx context.Context, ns string, dst netip.AddrPort, cfg stream.Config) (*stream.Stream, error) {
	dial := func(ctx context.Context) (stream.Conn, error) {
		var c net.Conn
		err := netns.Do(ns, func() error {
			var d net.Dialer
			var err error
			c, err = d.DialContext(ctx, "tcp", dst.String())
			return err
		})
		if err != nil {
			return nil, err
		}
		return newHTTPStreamConn(c, dst, b.topoName), nil
	}
	return stream.Start(ctx, cfg, dial, nil)
}

// httpStreamConn is one stream connection to the echo pods: kept-alive
// HTTP/1.1 requests in turn on one TCP connection.
type httpStreamConn struct {
	c     net.Conn
	rd    *bufio.Reader
	host  string
	names map[string]string // kind node → topology node
}

func newHTTPStreamConn(c net.Conn, dst netip.AddrPort, names map[string]string) *httpStreamConn {
	return &httpStreamConn{c: c, rd: bufio.NewReader(c), host: dst.String(), names: names}
}

// Exchange implements stream.Conn.
func (h *httpStreamConn) Exchange(seq uint64, deadline time.Time) (string, error) {
	if err := h.c.SetDeadline(deadline); err != nil {
		return "", err
	}
	path := "/stream/" + strconv.FormatUint(seq, 10)
	req, err := http.NewRequest(http.MethodGet, "http://"+h.host+path, nil)
	if err != nil {
		return "", err
	}
	if err := req.Write(h.c); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(h.rd, req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var reply struct {
		Node string `json:"node"`
		Path string `json:"path"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&reply); err != nil {
		return "", fmt.Errorf("echo answer: %w", err)
	}
	// Read the body to its end, so the next response starts where it should.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || reply.Path != path {
		return "", fmt.Errorf("%w: sent %s, got status %d path %q", stream.ErrWrongAnswer, path, resp.StatusCode, reply.Path)
	}
	if resp.Close {
		return "", fmt.Errorf("the echo server closes the connection after %s", path)
	}
	if n, ok := h.names[reply.Node]; ok {
		return n, nil
	}
	return reply.Node, nil
}

// Close implements stream.Conn.
func (h *httpStreamConn) Close() error { return h.c.Close() }
