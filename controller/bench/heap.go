package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// freeLoopbackAddr returns a loopback host:port nobody listens on (for the
// controller's --pprof-addr).
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// heapSampler polls a process's heap profile (as of its last GC) and keeps
// the one with the most bytes in use: the breakdown of the controller's live
// heap at its peak.
type heapSampler struct {
	addr string
	mu   sync.Mutex
	peak *profile.Profile
	// peakBytes is the in-use total of peak; stats the runtime's figures
	// read with it.
	peakBytes int64
	stats     map[string]int64
	samples   int
}

func getURL(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// sample reads one heap profile and the runtime's memory statistics.
func (h *heapSampler) sample(ctx context.Context) error {
	b, err := getURL(ctx, "http://"+h.addr+"/debug/pprof/heap")
	if err != nil {
		return err
	}
	p, err := profile.ParseData(b)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	txt, err := getURL(ctx, "http://"+h.addr+"/debug/pprof/heap?debug=1")
	if err != nil {
		return err
	}
	total := sum(p, inuseIndex(p))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples++
	if h.peak == nil || total > h.peakBytes {
		h.peak, h.peakBytes, h.stats = p, total, memStats(txt)
	}
	return nil
}

// run samples every interval until ctx ends.
func (h *heapSampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_ = h.sample(ctx) // a missed sample (process starting, stopping) is skipped
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func inuseIndex(p *profile.Profile) int {
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			return i
		}
	}
	return len(p.SampleType) - 1
}

func sum(p *profile.Profile, idx int) int64 {
	var n int64
	for _, s := range p.Sample {
		n += s.Value[idx]
	}
	return n
}

// memStats reads the runtime.MemStats lines ("# HeapInuse = 1234") at the end
// of a debug=1 heap profile.
func memStats(txt []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(txt))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "# ") {
			continue
		}
		k, v, ok := strings.Cut(line[2:], " = ")
		if !ok {
			continue
		}
		if _, sys, ok := strings.Cut(v, " / "); ok {
			v = sys // "inuse / sys": the memory held from the OS
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// site names an allocation by its innermost frame outside the runtime and
// the standard library's generic code (the code that asked for the memory),
// and category by that frame's package.
func site(s *profile.Sample) (site, category string) {
	for _, loc := range s.Location {
		for i := len(loc.Line) - 1; i >= 0; i-- { // inlined frames first
			fn := loc.Line[i].Function
			if fn == nil || generic(fn.Name) {
				continue
			}
			return fn.Name, pkgOf(fn.Name)
		}
	}
	if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function != nil {
		n := s.Location[0].Line[0].Function.Name
		return n, pkgOf(n)
	}
	return "?", "?"
}

// generic reports frames that allocate on behalf of a caller: the runtime,
// reflection, maps, byte buffers, the protobuf/JSON plumbing.
func generic(fn string) bool {
	pkg := pkgOf(fn)
	if !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
		// standard library; keep the network and TLS layers, which own buffers
		switch {
		case strings.HasPrefix(pkg, "net/http"), strings.HasPrefix(pkg, "crypto/tls"), pkg == "bufio":
			return false
		}
		return true
	}
	for _, p := range []string{"github.com/gogo/protobuf", "google.golang.org/protobuf", "sigs.k8s.io/json",
		"k8s.io/apimachinery/pkg/runtime", "k8s.io/apimachinery/pkg/util/json", "github.com/json-iterator",
		"sigs.k8s.io/structured-merge-diff"} {
		if strings.HasPrefix(pkg, p) {
			return true
		}
	}
	return false
}

// pkgOf returns the import path of a function name such as
// "k8s.io/client-go/tools/cache.(*threadSafeMap).Add".
func pkgOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

type amount struct {
	name  string
	bytes int64
}

func top(m map[string]int64, n int) []amount {
	var out []amount
	for k, v := range m {
		out = append(out, amount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].bytes > out[j].bytes || out[i].bytes == out[j].bytes && out[i].name < out[j].name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// report prints the peak profile: runtime figures, then in-use bytes by
// package and by allocation site.
func (h *heapSampler) report(w io.Writer, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peak == nil {
		fmt.Fprintln(w, "heap: no profile read")
		return
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	st := h.stats
	fmt.Fprintf(w, "heap at peak (largest of %d profiles, as of the last GC): in use %s; runtime: HeapInuse %s, HeapIdle %s (released %s), "+
		"Stack %s, GC metadata+other %s, Sys %s, NextGC %s, GCs %d\n",
		h.samples, mib(h.peakBytes), mib(st["HeapInuse"]), mib(st["HeapIdle"]), mib(st["HeapReleased"]), mib(st["Stack"]),
		mib(st["GCSys"]+st["OtherSys"]+st["MSpan"]+st["MCache"]+st["BuckHashSys"]), mib(st["Sys"]), mib(st["NextGC"]), st["NumGC"])
	idx := inuseIndex(h.peak)
	bySite, byPkg := map[string]int64{}, map[string]int64{}
	for _, s := range h.peak.Sample {
		si, cat := site(s)
		bySite[si] += s.Value[idx]
		byPkg[cat] += s.Value[idx]
	}
	fmt.Fprintf(w, "  by package:")
	for _, a := range top(byPkg, n) {
		fmt.Fprintf(w, " %s %s (%.0f%%);", a.name, mib(a.bytes), 100*float64(a.bytes)/float64(h.peakBytes))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "  by allocation site:")
	for _, a := range top(bySite, n) {
		fmt.Fprintf(w, "    %8s %4.1f%%  %s\n", mib(a.bytes), 100*float64(a.bytes)/float64(h.peakBytes), a.name)
	}
}
