package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/fabric/rib"
)

func TestHistoryWait(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"0s", 0, true}, {"250ms", 250 * time.Millisecond, true}, {"1m", time.Minute, true},
		{"61s", 0, false}, {"-1s", 0, false}, {"soon", 0, false}, {"5", 0, false},
	} {
		got, err := historyWait(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("historyWait(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// ribOnly serves the RIB endpoints of the control API; the rest of backend is
// not called by this test.
type ribOnly struct {
	backend
	r *rib.RIB
}

func (b ribOnly) ribView() *rib.RIB              { return b.r }
func (b ribOnly) registry() *prometheus.Registry { return prometheus.NewRegistry() }

func TestHistoryLongPoll(t *testing.T) {
	b := ribOnly{r: rib.New(0)}
	srv := httptest.NewServer(handler(b))
	defer srv.Close()
	get := func(query string) []rib.Change {
		t.Helper()
		resp, err := http.Get(srv.URL + "/history?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /history?%s: %s", query, resp.Status)
		}
		var out []rib.Change
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	start := time.Now()
	if h := get("after=0&wait=50ms"); len(h) != 0 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("empty RIB: got %+v after %s, want nothing after the wait", h, time.Since(start))
	}
	p := netip.MustParsePrefix("198.18.0.1/32")
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.r.Apply(time.Now(), []rib.Update{{Prefix: p, Paths: []rib.Path{{NextHop: netip.MustParseAddr("10.0.0.21")}}}})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan []rib.Change, 1)
	go func() { done <- get("after=0&wait=30s") }()
	select {
	case h := <-done:
		if len(h) != 1 || h[0].Prefix != p {
			t.Fatalf("woken with %+v", h)
		}
	case <-ctx.Done():
		t.Fatal("long poll not woken by the change")
	}
	resp, err := http.Get(srv.URL + "/history?after=0&wait=2h")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wait=2h: %s, want 400", resp.Status)
	}
}
