package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/heapprof"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

// freeLoopbackAddr returns a loopback host:port nobody listens on (for the
// controller's --pprof-addr).
func freeLoopbackAddr() (string, error) {
	p, err := testenv.FreeLoopbackPort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// heapSampler polls a process's heap profile (as of its last GC) and keeps
// the one with the most bytes in use: the breakdown of the controller's live
// heap at its peak.
type heapSampler struct {
	addr string
	mu   sync.Mutex
	peak *heapprof.Breakdown
	// stats are the runtime's figures read with peak.
	stats   map[string]int64
	samples int
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
	bd, err := heapprof.Parse(b)
	if err != nil {
		return err
	}
	txt, err := getURL(ctx, "http://"+h.addr+"/debug/pprof/heap?debug=1")
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples++
	if h.peak == nil || bd.Total > h.peak.Total {
		h.peak, h.stats = &bd, heapprof.MemStats(txt)
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

// report prints the peak profile: runtime figures, then in-use bytes by
// package and by allocation site.
func (h *heapSampler) report(w io.Writer, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.peak == nil {
		fmt.Fprintln(w, "heap: no profile read")
		return
	}
	fmt.Fprintf(w, "heap at peak (largest of %d profiles, as of the last GC): in use %s\n", h.samples, heapprof.MiB(h.peak.Total))
	heapprof.WriteMemStats(w, h.stats, "  ")
	h.peak.Write(w, n, "")
}

// cpuProfile reads a CPU profile of the given length from a process's pprof
// listener as soon as the listener answers (it starts with the manager, a
// little after the process) and writes it to path (diagnostics).
func cpuProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pprof listener %s: %w", addr, err)
		}
		time.Sleep(time.Millisecond)
	}
	b, err := getURL(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())))
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// restartPhases reads a controller's log and says when, after the process
// started, it logged its first line, won the Lease, had the Service cache
// synced (its workers start), had rebuilt the allocations and allocated
// svc's IP (diagnostics: where a restart's time goes). A svc ending in "*"
// is a name prefix: the phase is the first IP allocated to a Service whose
// name starts with it.
func restartPhases(logPath string, started time.Time, svc string) string {
	ip, ipMatch := "IP", `"IP allocated","service":"`+benchNS+"/"+svc+`"`
	if prefix, ok := strings.CutSuffix(svc, "*"); ok {
		ip, ipMatch = "first IP", `"IP allocated","service":"`+benchNS+"/"+prefix
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		return err.Error()
	}
	var day time.Time
	phases := []struct {
		name, match string
		at          time.Time
	}{
		{name: "first log line"},
		{name: "Lease", match: "successfully acquired lease"},
		{name: "Services listed", match: `"Services listed"`},
		{name: "Service cache synced", match: `"Starting workers","controller":"service"`},
		{name: "allocations rebuilt", match: `"allocations rebuilt"`},
		{name: ip, match: ipMatch},
	}
	for _, line := range strings.Split(string(raw), "\n") {
		var at time.Time
		if strings.HasPrefix(line, "{") {
			var l struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal([]byte(line), &l) != nil {
				continue
			}
			at = l.Time
			if day.IsZero() {
				day = at
			}
		} else if f := strings.Fields(line); len(f) > 1 && !day.IsZero() {
			// klog: "I1202 05:01:54.853557 ..." (time of day, UTC here).
			tod, err := time.Parse("15:04:05.000000", f[1])
			if err != nil {
				continue
			}
			at = time.Date(day.Year(), day.Month(), day.Day(), tod.Hour(), tod.Minute(), tod.Second(), tod.Nanosecond(), time.UTC)
		} else {
			continue
		}
		for i := range phases {
			if phases[i].at.IsZero() && (phases[i].match == "" || strings.Contains(line, phases[i].match)) {
				phases[i].at = at
			}
		}
	}
	var parts []string
	for _, p := range phases {
		if p.at.IsZero() {
			parts = append(parts, p.name+" not logged")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s +%dms", p.name, p.at.Sub(started).Milliseconds()))
	}
	return strings.Join(parts, ", ")
}
