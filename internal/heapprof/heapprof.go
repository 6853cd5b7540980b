// Package heapprof says where a Go process's heap goes, from its pprof heap
// profile: in-use bytes by allocation site and by package, and the runtime's
// own figures (the MemStats lines of a debug=1 profile). The benchmarks print
// it beside the peak RSS they measure.
package heapprof

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// Amount is bytes in use under a name.
type Amount struct {
	Name  string
	Bytes int64
}

// Breakdown is one profile's in-use heap (as of the last GC).
type Breakdown struct {
	Total     int64
	BySite    map[string]int64 // innermost frame that asked for the memory
	ByPackage map[string]int64 // that frame's package
}

// Parse reads a heap profile (the proto of /debug/pprof/heap).
func Parse(raw []byte) (Breakdown, error) {
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return Breakdown{}, fmt.Errorf("heap profile: %w", err)
	}
	return Of(p), nil
}

// Of breaks a parsed heap profile down.
func Of(p *profile.Profile) Breakdown {
	idx := len(p.SampleType) - 1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			idx = i
		}
	}
	b := Breakdown{BySite: map[string]int64{}, ByPackage: map[string]int64{}}
	for _, s := range p.Sample {
		v := s.Value[idx]
		site, pkg := Site(s)
		b.Total += v
		b.BySite[site] += v
		b.ByPackage[pkg] += v
	}
	return b
}

// Site names an allocation by its innermost frame outside the runtime and the
// generic code (reflection, maps, encoders) that allocates on a caller's
// behalf, and returns that frame's package.
func Site(s *profile.Sample) (site, pkg string) {
	for _, loc := range s.Location {
		for i := len(loc.Line) - 1; i >= 0; i-- { // inlined frames first
			fn := loc.Line[i].Function
			if fn == nil || generic(fn.Name) {
				continue
			}
			return fn.Name, PackageOf(fn.Name)
		}
	}
	if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function != nil {
		n := s.Location[0].Line[0].Function.Name
		return n, PackageOf(n)
	}
	return "?", "?"
}

// generic reports frames that allocate on behalf of a caller: the standard
// library (but the network and TLS layers, which own their buffers) and the
// protobuf and JSON plumbing.
func generic(fn string) bool {
	pkg := PackageOf(fn)
	if !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
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

// PackageOf returns the import path of a function name such as
// "k8s.io/client-go/tools/cache.(*threadSafeMap).Add".
func PackageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

// Top returns the n largest amounts of m, largest first (ties by name).
func Top(m map[string]int64, n int) []Amount {
	out := make([]Amount, 0, len(m))
	for k, v := range m {
		out = append(out, Amount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Bytes > out[j].Bytes || out[i].Bytes == out[j].Bytes && out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Write prints the n largest packages and allocation sites, each line
// starting with indent.
func (b Breakdown) Write(w io.Writer, n int, indent string) {
	pct := func(v int64) float64 { return 100 * float64(v) / float64(max(b.Total, 1)) }
	fmt.Fprintf(w, "%sGo heap in use (sampled profile, as of the last GC): %s\n", indent, MiB(b.Total))
	fmt.Fprintf(w, "%s  by package:", indent)
	for _, a := range Top(b.ByPackage, n) {
		fmt.Fprintf(w, " %s %s (%.0f%%);", a.Name, MiB(a.Bytes), pct(a.Bytes))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%s  by allocation site:\n", indent)
	for _, a := range Top(b.BySite, n) {
		fmt.Fprintf(w, "%s    %8s %4.1f%%  %s\n", indent, MiB(a.Bytes), pct(a.Bytes), a.Name)
	}
}

// MiB formats bytes as mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// MemStats reads the runtime.MemStats lines ("# HeapInuse = 1234") at the end
// of a debug=1 heap profile; for "inuse / sys" pairs it keeps sys, the memory
// held from the OS.
func MemStats(txt []byte) map[string]int64 {
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
			v = sys
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// WriteMemStats prints the runtime's figures of MemStats on one line.
func WriteMemStats(w io.Writer, st map[string]int64, indent string) {
	fmt.Fprintf(w, "%sGo runtime: HeapInuse %s, HeapIdle %s (released %s), Stack %s, GC metadata+other %s, Sys %s, NextGC %s, GCs %d\n",
		indent, MiB(st["HeapInuse"]), MiB(st["HeapIdle"]), MiB(st["HeapReleased"]), MiB(st["Stack"]),
		MiB(st["GCSys"]+st["OtherSys"]+st["MSpan"]+st["MCache"]+st["BuckHashSys"]), MiB(st["Sys"]), MiB(st["NextGC"]), st["NumGC"])
}
