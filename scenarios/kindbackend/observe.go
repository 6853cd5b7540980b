package kindbackend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// speakerMetricsPort is the chart's speaker metrics port (on the node's
// address; the host reaches it over the cluster network's bridge).
const speakerMetricsPort = 7472

// speakerPod is the speaker pod on a kind node (nil: none).
func (b *Backend) speakerPod(ctx context.Context, kindNode string) (*corev1.Pod, error) {
	list, err := b.kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: speakerSelector,
		FieldSelector: "spec.nodeName=" + kindNode})
	if err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

func restartCount(p *corev1.Pod) int32 {
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

// recordRestarts notes every speaker's restart count, the baseline of
// CheckAlive.
func (b *Backend) recordRestarts(ctx context.Context) error {
	for _, k := range b.kindName {
		p, err := b.speakerPod(ctx, k)
		if err != nil {
			return err
		}
		if p != nil {
			b.restarts[string(p.UID)] = restartCount(p)
		}
	}
	return nil
}

// Running implements backend.Backend: a speaker process runs in the node
// container.
func (b *Backend) Running(node string) bool {
	k := b.kindName[node]
	if k == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid, err := speakerPID(ctx, k)
	return err == nil && pid != 0
}

// CheckAlive implements backend.Backend: it fails when a speaker container
// restarted (crashed) since Up or a node has no speaker pod, or no
// controller pod runs.
func (b *Backend) CheckAlive() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, n := range b.topo.Nodes {
		k := b.kindName[n.Name]
		p, err := b.speakerPod(ctx, k)
		switch {
		case err != nil:
			errs = append(errs, err)
		case p == nil:
			errs = append(errs, fmt.Errorf("no speaker pod on %s (%s)", n.Name, k))
		default:
			if base, ok := b.restarts[string(p.UID)]; ok && restartCount(p) > base {
				errs = append(errs, fmt.Errorf("speaker on %s restarted %d times:\n%s", n.Name, restartCount(p)-base,
					b.podLog(ctx, p.Name, 15, true)))
			}
		}
	}
	list, err := b.kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
	if err != nil {
		errs = append(errs, err)
	} else if !slices.ContainsFunc(list.Items, func(p corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
	}) {
		errs = append(errs, errors.New("no controller pod runs"))
	}
	return errors.Join(errs...)
}

func (b *Backend) podLog(ctx context.Context, pod string, lines int, previous bool) string {
	return b.podLogSince(ctx, pod, lines, previous, time.Time{})
}

// podLogSince is podLog from since on (zero: the whole log), at most lines
// lines (the last ones).
func (b *Backend) podLogSince(ctx context.Context, pod string, lines int, previous bool, since time.Time) string {
	o := &corev1.PodLogOptions{TailLines: ptr.To(int64(lines)), Previous: previous}
	if !since.IsZero() {
		o.SinceTime = &metav1.Time{Time: since}
	}
	raw, err := b.kube.CoreV1().Pods(Namespace).GetLogs(pod, o).DoRaw(ctx)
	if err != nil {
		return fmt.Sprintf("(log of %s: %v)", pod, err)
	}
	return string(raw)
}

// Logs implements backend.Backend (kubectl logs): "controller" is every
// controller pod's, "speaker-<node>" the node's speaker's.
func (b *Backend) Logs(component string, lines int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if component == "controller" {
		list, err := b.kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
		if err != nil {
			return err.Error()
		}
		var out strings.Builder
		for _, p := range list.Items {
			fmt.Fprintf(&out, "--- %s\n%s", p.Name, b.podLog(ctx, p.Name, lines, false))
		}
		return out.String()
	}
	node, ok := strings.CutPrefix(component, "speaker-")
	if !ok || b.kindName[node] == "" {
		return ""
	}
	p, err := b.speakerPod(ctx, b.kindName[node])
	if err != nil || p == nil {
		return fmt.Sprintf("(no speaker pod on %s: %v)", node, err)
	}
	return b.podLog(ctx, p.Name, lines, false)
}

// SpeakerRuntime implements backend.Backend from the speaker's /metrics on
// the node's address. The chart runs the speaker without pprof, so no GC
// can be forced: it reads the heap twice, two seconds apart, and keeps the
// smaller reading (GCForced false).
func (b *Backend) SpeakerRuntime(ctx context.Context, node string) (backend.Runtime, error) {
	n, ok := b.topo.Node(node)
	if !ok {
		return backend.Runtime{}, fmt.Errorf("kind: no node %q", node)
	}
	url := "http://" + netip.AddrPortFrom(n.Address, speakerMetricsPort).String() + "/metrics"
	read := func() (map[string]float64, error) {
		page, err := httpGet(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("speaker on %s: %w", node, err)
		}
		return metricValues(page, "go_goroutines", "go_memstats_heap_inuse_bytes")
	}
	m1, err := read()
	if err != nil {
		return backend.Runtime{}, err
	}
	select {
	case <-ctx.Done():
		return backend.Runtime{}, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	m2, err := read()
	if err != nil {
		return backend.Runtime{}, err
	}
	return backend.Runtime{Goroutines: m2["go_goroutines"],
		HeapInuse: min(m1["go_memstats_heap_inuse_bytes"], m2["go_memstats_heap_inuse_bytes"])}, nil
}

// SaveSpeakerHeapProfile implements backend.Backend: the chart's speaker
// serves no pprof, so there is no profile to save.
func (b *Backend) SaveSpeakerHeapProfile(context.Context, string, string) error {
	return fmt.Errorf("kind: heap profile: %w (the chart runs the speaker without --pprof-addr)", ErrNotOnKind)
}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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

// metricValues extracts unlabelled values from a Prometheus text page.
func metricValues(page []byte, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(page)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, n := range names {
			if rest, ok := strings.CutPrefix(sc.Text(), n+" "); ok {
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

// speakerLogSince is a node's speaker log from since on: the last
// diagnoseLogLines lines of it.
func (b *Backend) speakerLogSince(ctx context.Context, node string, since time.Time) string {
	p, err := b.speakerPod(ctx, b.kindName[node])
	if err != nil || p == nil {
		return fmt.Sprintf("(no speaker pod on %s: %v)", node, err)
	}
	return b.podLogSince(ctx, p.Name, diagnoseLogLines, false, since)
}

// diagnoseLogLines bounds each speaker's log in a diagnosis.
const diagnoseLogLines = 300

// Diagnose implements backend.Backend: each ToR's RIB history of the
// prefixes, BGP neighbors, BFD sessions and events since `since`, and the
// named nodes' speaker logs since then.
func (b *Backend) Diagnose(ctx context.Context, since time.Time, prefixes []netip.Prefix, nodes ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var s strings.Builder
	topo := backend.Topology{Topology: b.topo}
	hops := func(as []netip.Addr) string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = topo.NodeOf(a)
		}
		return "{" + strings.Join(out, ",") + "}"
	}
	fmt.Fprintf(&s, "\n===== kind: session state history since %s =====\n", since.Format("15:04:05.000"))
	for _, r := range b.topo.ToRs {
		tor := r.Name
		fmt.Fprintf(&s, "--- %s: RIB history\n", tor)
		hist, err := b.fabric.History(ctx, tor, 0)
		if err != nil {
			fmt.Fprintf(&s, "  (history: %v)\n", err)
		}
		for _, c := range hist {
			if c.At.Before(since) || (len(prefixes) > 0 && !slices.Contains(prefixes, c.Prefix)) {
				continue
			}
			fmt.Fprintf(&s, "  %s %-8s %s %s → %s\n", c.At.Format("15:04:05.000000"), c.Kind, c.Prefix, hops(c.Old), hops(c.New))
		}
		fmt.Fprintf(&s, "--- %s: BGP neighbors\n", tor)
		if ns, err := b.fabric.Neighbors(ctx, tor); err != nil {
			fmt.Fprintf(&s, "  (neighbors: %v)\n", err)
		} else {
			for _, n := range ns {
				fmt.Fprintf(&s, "  %-6s %-15s %-12s admin-down=%v bfd=%s since=%s accepted=%d\n", n.Name, n.Address, n.State,
					n.AdminDown, n.BFD, n.Since.Format("15:04:05.000"), n.Accepted)
			}
		}
		fmt.Fprintf(&s, "--- %s: BGP/BFD events\n", tor)
		if evs, err := b.fabric.Events(ctx, tor, 0); err == nil {
			for _, e := range evs {
				if !e.At.Before(since) {
					fmt.Fprintf(&s, "  %s %s %-6s %s → %s %s\n", e.At.Format("15:04:05.000000"), e.Kind, topo.NodeOf(e.Peer), e.Old, e.New, e.Detail)
				}
			}
		}
	}
	for _, n := range nodes {
		fmt.Fprintf(&s, "--- speaker on %s (%s): log since %s\n%s\n", n, b.kindName[n], since.Format("15:04:05.000"), b.speakerLogSince(ctx, n, since))
	}
	if err := b.CheckAlive(); err != nil {
		fmt.Fprintf(&s, "--- pods\n%v\n", err)
	}
	return s.String()
}
