package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/internal/proc"
)

func TestAPIServerStopAndStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver and etcd")
	}
	env := Start(t, Options{})
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "metallb-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	env.StopAPIServer()
	if env.APIServerPID() != 0 {
		t.Fatal("apiserver still reported running")
	}
	short, scancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cs.CoreV1().Namespaces().Get(short, "metallb-system", metav1.GetOptions{})
	scancel()
	if err == nil {
		t.Fatal("apiserver answered while stopped")
	}
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// Same address, credentials and data (etcd kept running).
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "metallb-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// A /readyz request that hangs (a stuck connection) is abandoned and tried
// again, so the wait ends when the server answers, not never.
func TestWaitReadyRetriesAHungRequest(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // the first request hangs until the test ends
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	defer close(release)
	p, err := proc.Start("sleeper", proc.Options{LogPath: filepath.Join(t.TempDir(), "sleep.log")}, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitReady(ctx, &rest.Config{Host: srv.URL}, p); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("%d requests, want the hung one and a second", n)
	}
}
