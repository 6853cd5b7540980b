package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRestartPhases(t *testing.T) {
	log := `{"time":"2026-12-02T05:01:54.828263673Z","level":"INFO","msg":"controller starting"}
I1202 05:01:54.853557    3401 leaderelection.go:271] successfully acquired lease metallb-system/ecmplb-controller
{"time":"2026-12-02T05:01:55.501Z","level":"INFO","msg":"Services listed","services":11003,"pages":1,"took":"600ms"}
{"time":"2026-12-02T05:01:55.757637062Z","level":"INFO","msg":"Starting workers","controller":"ipaddresspool","worker count":1}
{"time":"2026-12-02T05:01:55.778731782Z","level":"INFO","msg":"Starting workers","controller":"service","worker count":32}
{"time":"2026-12-02T05:01:56.441927525Z","level":"INFO","msg":"allocations rebuilt","services":11003}
{"time":"2026-12-02T05:01:56.445Z","level":"INFO","msg":"IP allocated","service":"bench/other","ips":"10.200.42.248"}
{"time":"2026-12-02T05:01:56.447469695Z","level":"INFO","msg":"IP allocated","service":"bench/after-restart-2","ips":"10.200.42.249"}
`
	path := filepath.Join(t.TempDir(), "c.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 2, 5, 1, 54, 700_000_000, time.UTC)
	got := restartPhases(path, started, "after-restart-2")
	want := "first log line +128ms, Lease +153ms, Services listed +801ms, Service cache synced +1078ms, allocations rebuilt +1741ms, IP +1747ms"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := restartPhases(path, started, "missing"); got != "first log line +128ms, Lease +153ms, Services listed +801ms, Service cache synced +1078ms, allocations rebuilt +1741ms, IP not logged" {
		t.Fatalf("missing Service: %s", got)
	}
	if got := restartPhases(path, started, "after-*"); got != "first log line +128ms, Lease +153ms, Services listed +801ms, Service cache synced +1078ms, allocations rebuilt +1741ms, first IP +1747ms" {
		t.Fatalf("first of a prefix: %s", got)
	}
}

func TestMedian(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{ms(300), 300 * time.Millisecond},
		{ms(400, 250, 300), 300 * time.Millisecond},
		{ms(250, 900, 260, 240), 260 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 3 * time.Millisecond},
	} {
		if got := median(append([]time.Duration(nil), c.in...)); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
