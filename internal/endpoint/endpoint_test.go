package endpoint

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	cases := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"127.0.0.53:6060", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"[::ffff:127.0.0.1]:6060", true},
		{":6060", false},
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"10.0.0.21:6060", false},
		{"node1.example.com:6060", false},
		{"127.0.0.1", false}, // no port
	}
	for _, tc := range cases {
		err := CheckLoopback("--pprof-addr", tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestListenAddr(t *testing.T) {
	cases := map[string]string{
		"10.0.0.21:7472":   "10.0.0.21:7472",
		"fd00::21:7472":    "[fd00::21]:7472",
		"[fd00::21]:7472":  "[fd00::21]:7472",
		":7472":            ":7472",
		"127.0.0.1:7472":   "127.0.0.1:7472",
		"node1:7472":       "node1:7472",
		"2001:db8::1:7472": "[2001:db8::1]:7472",
	}
	for in, want := range cases {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestServePprof(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := ServePprof(ctx, "0.0.0.0:0", log); err == nil {
		t.Error("ServePprof on 0.0.0.0 succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := ServePprof(ctx, addr, log); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?gc=1", "/debug/pprof/cmdline"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}
