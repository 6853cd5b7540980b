package main

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// heapBreakdown fetches the speaker's heap profile and metrics (inside its
// namespace) and prints where the memory goes: the Go runtime's own accounting
// (heap in use, free heap kept, stacks, runtime metadata) and the heap in use
// by allocation site, grouped by the first frame in a package of interest.
func heapBreakdown(netns, heapURL, metricsURL string) (string, error) {
	var b strings.Builder
	if raw, err := fetchIn(netns, metricsURL); err == nil {
		m := parseMetrics(raw)
		mib := func(k string) float64 { return m[k] / (1 << 20) }
		fmt.Fprintf(&b, "    Go runtime: heap in use %.1f MiB, heap idle %.1f MiB (released to the OS %.1f), stacks %.1f MiB, GC metadata %.1f MiB, spans %.1f MiB, other %.1f MiB; next GC at %.1f MiB\n",
			mib("go_memstats_heap_inuse_bytes"), mib("go_memstats_heap_idle_bytes"), mib("go_memstats_heap_released_bytes"),
			mib("go_memstats_stack_inuse_bytes"), mib("go_memstats_gc_sys_bytes"), mib("go_memstats_mspan_inuse_bytes"),
			mib("go_memstats_other_sys_bytes"), mib("go_memstats_next_gc_bytes"))
	} else {
		fmt.Fprintf(&b, "    Go runtime metrics: %v\n", err)
	}
	raw, err := fetchIn(netns, heapURL)
	if err != nil {
		return b.String(), err
	}
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return b.String(), fmt.Errorf("heap profile: %w", err)
	}
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "inuse_space" {
			idx = i
		}
	}
	if idx < 0 {
		return b.String(), fmt.Errorf("heap profile has no inuse_space")
	}
	bySite := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		bySite[site(s)] += v
	}
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range bySite {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	fmt.Fprintf(&b, "    Go heap in use by allocation site (sampled profile, %.1f MiB):\n", float64(total)/(1<<20))
	for i, e := range l {
		if i == 15 {
			break
		}
		fmt.Fprintf(&b, "      %6.1f MiB %5.1f%%  %s\n", float64(e.v)/(1<<20), 100*float64(e.v)/float64(max(total, 1)), e.k)
	}
	return b.String(), nil
}

// site names an allocation by its innermost frame outside the Go runtime and
// the generic containers (reflect, maps, encoding), followed by that frame's
// caller in ecmplb or a dependency, so the line says who holds the memory.
func site(s *profile.Sample) string {
	var frames []string
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			if ln.Function != nil {
				frames = append(frames, ln.Function.Name)
			}
		}
	}
	generic := func(f string) bool {
		for _, p := range []string{"runtime.", "reflect.", "internal/", "encoding/", "sync.", "strings.", "bytes.", "maps.", "slices.", "sort."} {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
		return false
	}
	var out []string
	for _, f := range frames {
		if generic(f) {
			continue
		}
		out = append(out, f)
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 && len(frames) > 0 {
		out = frames[:1]
	}
	return strings.Join(out, " <- ")
}

// parseMetrics reads the unlabelled samples of a Prometheus text exposition.
func parseMetrics(raw []byte) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			m[name] = v
		}
	}
	return m
}
