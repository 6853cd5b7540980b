package kindbackend

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// A stream connection sends its messages as kept-alive requests on one
// connection and names the node by the topology; an answer for another
// path is refused.
func TestHTTPStreamConn(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if path == "/stream/3" {
			path = "/stream/4"
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"node": "kind-worker2", "path": path})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	dst := netip.MustParseAddrPort(srv.Listener.Addr().String())
	c, err := net.Dial("tcp", dst.String())
	if err != nil {
		t.Fatal(err)
	}
	h := newHTTPStreamConn(c, dst, map[string]string{"kind-worker2": "node2"})
	defer h.Close()
	for seq := range uint64(3) {
		node, err := h.Exchange(seq, time.Now().Add(5*time.Second))
		if err != nil || node != "node2" {
			t.Fatalf("message %d: node %q, error %v", seq, node, err)
		}
	}
	if _, err := h.Exchange(3, time.Now().Add(5*time.Second)); !errors.Is(err, stream.ErrWrongAnswer) {
		t.Errorf("answer for another path: error %v, want ErrWrongAnswer", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want the one kept alive", n)
	}
}
