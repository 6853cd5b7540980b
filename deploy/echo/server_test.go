package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHTTPReply(t *testing.T) {
	srv := httptest.NewServer(HTTPHandler(Identity{Pod: "echo-1", Node: "node1"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Pod != "echo-1" || r.Node != "node1" || r.Path != "/x" || r.Client == "" {
		t.Errorf("reply %+v", r)
	}
	h, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(h.Body)
	h.Body.Close()
	if h.StatusCode != 200 || string(b) != "ok\n" {
		t.Errorf("/healthz: %d %q", h.StatusCode, b)
	}
}

func TestTCPEcho(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeTCPEcho(l, 200*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("hello through ECMP")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("echo %q (%v)", got, err)
	}
	// An idle connection is closed by the server.
	if _, err := c.Read(got); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF", err)
	}
	l.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeTCPEcho after Close: %v", err)
	}
}
