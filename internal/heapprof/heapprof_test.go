package heapprof

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// add appends a sample to p, innermost frame first, one function per location.
func add(p *profile.Profile, bytes int64, frames ...string) {
	s := &profile.Sample{Value: []int64{1, bytes}}
	for _, f := range frames {
		fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: f}
		loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
		p.Function, p.Location = append(p.Function, fn), append(p.Location, loc)
		s.Location = append(s.Location, loc)
	}
	p.Sample = append(p.Sample, s)
}

// An allocation is charged to the innermost frame that is not the runtime or
// generic plumbing, and the totals add up, also through a written and parsed
// profile.
func TestBreakdown(t *testing.T) {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
	}
	add(p, 100, "runtime.mallocgc", "reflect.New", "k8s.io/apimachinery/pkg/runtime.Decode", "example.com/a/cache.(*store).Add")
	add(p, 50, "runtime.makemap", "example.com/a/cache.(*store).Add")
	add(p, 30, "runtime.mallocgc", "net/http.(*conn).readRequest")
	add(p, 7, "runtime.mallocgc")
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	b, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b.Total != 187 || b.BySite["example.com/a/cache.(*store).Add"] != 150 || b.BySite["net/http.(*conn).readRequest"] != 30 ||
		b.BySite["runtime.mallocgc"] != 7 || b.ByPackage["example.com/a/cache"] != 150 || b.ByPackage["net/http"] != 30 {
		t.Errorf("breakdown %+v", b)
	}
	if top := Top(b.BySite, 2); len(top) != 2 || top[0].Bytes != 150 || top[1].Bytes != 30 {
		t.Errorf("top %v", top)
	}
	var out strings.Builder
	b.Write(&out, 5, "  ")
	if !strings.Contains(out.String(), "example.com/a/cache.(*store).Add") {
		t.Errorf("written:\n%s", out.String())
	}
}

func TestPackageOf(t *testing.T) {
	for fn, want := range map[string]string{
		"k8s.io/client-go/tools/cache.(*threadSafeMap).Add": "k8s.io/client-go/tools/cache",
		"runtime.mallocgc":       "runtime",
		"net/http.(*conn).serve": "net/http",
		"main.main":              "main",
		"github.com/a/b.F.func1": "github.com/a/b",
		"noDot":                  "noDot",
	} {
		if got := PackageOf(fn); got != want {
			t.Errorf("PackageOf(%q) = %q, want %q", fn, got, want)
		}
	}
}

func TestMemStats(t *testing.T) {
	txt := []byte("heap profile: ...\n# runtime.MemStats\n# HeapInuse = 1048576\n# Stack = 65536 / 131072\n# NumGC = 12\n# PauseNs = [1 2 3]\n")
	st := MemStats(txt)
	if st["HeapInuse"] != 1<<20 || st["Stack"] != 131072 || st["NumGC"] != 12 || len(st) != 3 {
		t.Errorf("MemStats %v", st)
	}
}
