package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Inside its node's namespace every speaker serves /metrics on
// speakerMetricsAddr and, when the binary has the flag, pprof on
// speakerPprofAddr: loopback of the namespace, reachable from nowhere else.
const (
	speakerMetricsAddr = "127.0.0.1:7472"
	speakerPprofAddr   = "127.0.0.1:7473"
)

// Runtime is what a speaker's Go runtime reports.
type Runtime = backend.Runtime

// speakerHasPprof reports whether the speaker binary takes --pprof-addr.
func speakerHasPprof(bin string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput() // exits 0 or 2 depending on the flag package
	return strings.Contains(string(out), "pprof-addr")
}

// nsClient is an HTTP client whose connections are opened inside a network
// namespace (a socket stays in the namespace it was created in).
func nsClient(ns string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := netns.Do(ns, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// metricValues extracts unlabelled gauge values from a Prometheus text page.
func metricValues(page []byte, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(page)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if rest, ok := strings.CutPrefix(line, n+" "); ok {
				v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", n, err)
				}
				out[n] = v
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("metric %s missing", n)
		}
	}
	return out, nil
}

// SpeakerRuntime reads go_goroutines and the in-use heap of a node's speaker
// from its metrics endpoint. With --pprof-addr it first forces a GC
// (/debug/pprof/heap?gc=1), so the heap figure is live data only. Without it
// there is no way to force one from outside: it reads the heap twice, two
// seconds apart, and keeps the smaller reading (a GC cycle is likely to have
// run in between on a speaker that allocates).
func (l *Lab) SpeakerRuntime(ctx context.Context, node string) (Runtime, error) {
	hc := nsClient(l.Fabric.NodeNetNS(node))
	defer hc.CloseIdleConnections()
	read := func() (map[string]float64, error) {
		page, err := get(ctx, hc, "http://"+speakerMetricsAddr+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("speaker on %s: %w", node, err)
		}
		return metricValues(page, "go_goroutines", "go_memstats_heap_inuse_bytes")
	}
	if l.speakerPprof {
		if _, err := get(ctx, hc, "http://"+speakerPprofAddr+"/debug/pprof/heap?gc=1"); err != nil {
			return Runtime{}, fmt.Errorf("speaker on %s: forcing a GC: %w", node, err)
		}
		m, err := read()
		if err != nil {
			return Runtime{}, err
		}
		return Runtime{Goroutines: m["go_goroutines"], HeapInuse: m["go_memstats_heap_inuse_bytes"], GCForced: true}, nil
	}
	m1, err := read()
	if err != nil {
		return Runtime{}, err
	}
	select {
	case <-ctx.Done():
		return Runtime{}, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	m2, err := read()
	if err != nil {
		return Runtime{}, err
	}
	return Runtime{Goroutines: m2["go_goroutines"], HeapInuse: min(m1["go_memstats_heap_inuse_bytes"], m2["go_memstats_heap_inuse_bytes"])}, nil
}

// SaveSpeakerHeapProfile writes a heap profile of a node's speaker (after a
// forced GC) to path, for `go tool pprof -diff_base OLD NEW`. It needs
// --pprof-addr.
func (l *Lab) SaveSpeakerHeapProfile(ctx context.Context, node, path string) error {
	if !l.speakerPprof {
		return fmt.Errorf("speaker binary has no --pprof-addr")
	}
	hc := nsClient(l.Fabric.NodeNetNS(node))
	defer hc.CloseIdleConnections()
	b, err := get(ctx, hc, "http://"+speakerPprofAddr+"/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("speaker on %s: heap profile: %w", node, err)
	}
	return os.WriteFile(path, b, 0o644)
}
