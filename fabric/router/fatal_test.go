package router

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// A Fatal from GoBGP ends Run with that error (GoBGP would run on in a state it
// did not expect); it neither panics nor exits the process.
func TestGoBGPFatalEndsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to listen on port 179")
	}
	r := New(Config{Name: "fataltest", ASN: 65000, Address: netip.MustParseAddr("127.77.0.1"),
		ControlSocket: filepath.Join(t.TempDir(), "r.sock")}, WithLogger(slog.New(slog.DiscardHandler)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.startedCh:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	// A policy naming an undefined set: GoBGP's RoutingPolicy.Reset calls Fatal,
	// then returns the error.
	err := r.bgp.SetPolicies(ctx, &api.SetPoliciesRequest{Policies: []*api.Policy{{Name: "p",
		Statements: []*api.Statement{{Name: "s", Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Name: "undefined"}}}}}}})
	if err == nil {
		t.Fatal("SetPolicies with an undefined prefix set succeeded")
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "failed to create routing policy") {
			t.Fatalf("Run ended with %v, want GoBGP's fatal error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run goes on after a GoBGP Fatal")
	}
}
