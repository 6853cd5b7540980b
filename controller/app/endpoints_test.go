package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpCode(url string) (int, error) {
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

// run runs the controller against rc until the test ends; the returned
// channel receives Run's result.
func run(t *testing.T, rc *rest.Config, cfg Config) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Namespace = "metallb-system"
	cfg.HealthAddr = "0"
	cfg.Registry = prometheus.NewRegistry()
	cfg.SkipNameValidation = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	done, finished := make(chan error, 1), make(chan struct{})
	go func() { done <- Run(ctx, rc, cfg); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(20 * time.Second):
			t.Error("controller did not stop")
		}
	})
	return done
}

// pprof is off unless asked for, and then only on its own loopback address.
func TestControllerPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{})
	metrics := freeAddr(t)
	run(t, env.Config, Config{MetricsAddr: metrics})
	if code, err := httpCode("http://" + metrics + "/metrics"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", code, err)
	}
	if code, _ := httpCode("http://" + metrics + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ on the metrics address: %d, want 404", code)
	}

	metrics, pprofAddr := freeAddr(t), freeAddr(t)
	run(t, env.Config, Config{MetricsAddr: metrics, PprofAddr: pprofAddr})
	if code, err := httpCode("http://" + pprofAddr + "/debug/pprof/"); err != nil || code != http.StatusOK {
		t.Errorf("GET /debug/pprof/ on --pprof-addr: %d, %v", code, err)
	}
}

// pprof on a non-loopback address is refused before anything starts.
func TestControllerPprofRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":6060", "0.0.0.0:6060", "10.0.0.1:6060"} {
		select {
		case err := <-run(t, &rest.Config{Host: "http://127.0.0.1:1"}, Config{MetricsAddr: "0", PprofAddr: addr}):
			if err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
				t.Errorf("PprofAddr %q: err %v, want one naming --pprof-addr", addr, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("PprofAddr %q: controller started", addr)
		}
	}
}
