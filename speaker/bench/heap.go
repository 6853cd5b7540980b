package main

import (
	"strings"

	"github.com/ecmplb/ecmplb/internal/heapprof"
)

// heapBreakdown fetches the speaker's heap profile (inside its namespace, where
// its loopback pprof endpoint is) and prints where the memory goes: the Go
// runtime's own figures and the heap in use by package and allocation site.
func heapBreakdown(netns, heapURL string) (string, error) {
	var b strings.Builder
	txt, err := fetchIn(netns, heapURL+"?debug=1")
	if err != nil {
		return "", err
	}
	heapprof.WriteMemStats(&b, heapprof.MemStats(txt), "    ")
	raw, err := fetchIn(netns, heapURL)
	if err != nil {
		return b.String(), err
	}
	bd, err := heapprof.Parse(raw)
	if err != nil {
		return b.String(), err
	}
	bd.Write(&b, 12, "    ")
	return b.String(), nil
}
