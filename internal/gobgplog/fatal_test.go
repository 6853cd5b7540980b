package gobgplog_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	bgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// TestFatalDoesNotPanic: GoBGP calls Fatal on its own goroutines and carries
// on (or returns an error) afterwards, so the adapter logs, reports and
// returns, whatever its options.
func TestFatalDoesNotPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []gobgplog.Option
	}{
		{"fabric router", []gobgplog.Option{gobgplog.WithLevel(bgplog.InfoLevel)}},
		{"fabric announcer", []gobgplog.Option{gobgplog.WithLevel(bgplog.WarnLevel)}},
		{"speaker", []gobgplog.Option{gobgplog.WithDemotedChatter(), gobgplog.WithPrefix("gobgp: ")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := gobgplog.New(slog.New(slog.NewTextHandler(&buf, nil)), tc.opts...)
			for i := 0; i < 2; i++ { // the second one must not block either
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("Fatal panicked: %v", r)
						}
					}()
					l.Fatal("unknown msg type", bgplog.Fields{"Topic": "Peer"})
				}()
			}
			if out := buf.String(); strings.Count(out, "level=ERROR") != 2 || !strings.Contains(out, "unknown msg type") {
				t.Errorf("Fatal logged %q, want two error-level lines with the message", out)
			}
			select {
			case err := <-l.Fatals():
				var fe *gobgplog.FatalError
				if !errors.As(err, &fe) || fe.Msg != "unknown msg type" || fe.Fields["Topic"] != "Peer" {
					t.Errorf("Fatals gave %v, want the message and its fields", err)
				}
			default:
				t.Error("Fatals reported nothing")
			}
		})
	}
}

// TestGoBGPFatalPath drives a real BgpServer into one of its Fatal calls: a
// policy that names an undefined prefix set makes RoutingPolicy.Reset call
// Fatal on the server's goroutine, with its policy lock held, and then return
// the error. A panicking adapter takes the whole process down there; an
// exiting one too.
func TestGoBGPFatalPath(t *testing.T) {
	var buf bytes.Buffer
	l := gobgplog.New(slog.New(slog.NewTextHandler(&buf, nil)), gobgplog.WithLevel(bgplog.InfoLevel))
	s := server.NewBgpServer(server.LoggerOption(l))
	go s.Serve()
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "192.0.2.1", ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	err := s.SetPolicies(ctx, &api.SetPoliciesRequest{Policies: []*api.Policy{{
		Name: "p",
		Statements: []*api.Statement{{
			Name:       "s",
			Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Name: "undefined"}},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}},
	}}})
	if err == nil {
		t.Fatal("SetPolicies with an undefined prefix set succeeded")
	}
	select {
	case ferr := <-l.Fatals():
		if !strings.Contains(ferr.Error(), "failed to create routing policy") {
			t.Errorf("Fatals gave %v", ferr)
		}
	default:
		t.Error("GoBGP's Fatal was not reported on Fatals")
	}
	if !strings.Contains(buf.String(), "level=ERROR msg=\"failed to create routing policy\"") {
		t.Errorf("GoBGP's Fatal was not logged at error level:\n%s", buf.String())
	}
	// The server still answers.
	if _, err := s.GetBgp(ctx, &api.GetBgpRequest{}); err != nil {
		t.Fatalf("server after Fatal: %v", err)
	}
}
