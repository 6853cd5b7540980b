package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// The metrics endpoint listens on a node address: it serves /metrics and no
// pprof.
func TestMetricsMuxHasNoPprof(t *testing.T) {
	srv := httptest.NewServer(MetricsMux(prometheus.NewRegistry()))
	defer srv.Close()
	for path, want := range map[string]int{
		"/metrics":               http.StatusOK,
		"/debug/pprof/":          http.StatusNotFound,
		"/debug/pprof/profile":   http.StatusNotFound,
		"/debug/pprof/heap":      http.StatusNotFound,
		"/debug/pprof/cmdline":   http.StatusNotFound,
		"/debug/pprof/goroutine": http.StatusNotFound,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, error) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	return 0, last
}

// runNoAPI runs the speaker against an API server that is not there (it
// waits for its caches) until the test ends.
func runNoAPI(t *testing.T, c Config) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c.NodeName = "node1"
	c.RestConfig = &rest.Config{Host: "http://127.0.0.1:1"}
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	done, finished := make(chan error, 1), make(chan struct{})
	go func() { done <- Run(ctx, c); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("speaker did not stop")
		}
	})
	return done
}

// By default the speaker serves no pprof, on the metrics address or elsewhere;
// with PprofAddr it serves it there.
func TestPprofOffByDefault(t *testing.T) {
	metrics := freeAddr(t)
	runNoAPI(t, Config{MetricsAddr: metrics})
	code, err := get(t, "http://"+metrics+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", code, err)
	}
	if code, _ := get(t, "http://"+metrics+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the metrics address: %d, want 404", code)
	}

	metrics, pprofAddr := freeAddr(t), freeAddr(t)
	runNoAPI(t, Config{MetricsAddr: metrics, PprofAddr: pprofAddr})
	if code, err := get(t, "http://"+pprofAddr+"/debug/pprof/heap?gc=1"); err != nil || code != http.StatusOK {
		t.Errorf("GET /debug/pprof/heap on --pprof-addr: %d, %v", code, err)
	}
	if code, _ := get(t, "http://"+metrics+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the metrics address with pprof on: %d, want 404", code)
	}
}

// pprof on a non-loopback address is refused with an error naming the flag.
func TestPprofRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":6060", "0.0.0.0:6060", "10.0.0.21:6060", "[::]:6060"} {
		done := runNoAPI(t, Config{PprofAddr: addr})
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
				t.Errorf("PprofAddr %q: err %v, want one naming --pprof-addr", addr, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("PprofAddr %q: speaker started", addr)
		}
	}
}
