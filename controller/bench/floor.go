package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// The floors: what the apiserver itself needs for the requests the
// controller cannot avoid, made by a bare client (protobuf, the controller's
// QPS) with nothing else running. The controller's figures are read as
// ratios of them.

// listTimes is the List floor: the fastest of three Lists of every
// Service, with the responses gzipped (client-go's default: kube-apiserver
// compresses a List over 128 KiB when the client accepts it) and
// uncompressed.
type listTimes struct {
	gzip, plain time.Duration
	// gzipCPU and plainCPU are kube-apiserver's CPU seconds per List, the
	// mean of the three.
	gzipCPU, plainCPU float64
	n                 int
}

// best is the faster way.
func (l listTimes) best() time.Duration { return min(l.gzip, l.plain) }

func (l listTimes) String() string {
	return fmt.Sprintf("floor: List of the %d Services %.3fs (bare client, protobuf, one request, fastest of 3 each way: gzipped %.3fs, uncompressed %.3fs; kube-apiserver CPU per List %.3fs and %.3fs)",
		l.n, l.best().Seconds(), l.gzip.Seconds(), l.plain.Seconds(), l.gzipCPU, l.plainCPU)
}

// listFloor times Lists of every Service (one request, as few as any
// client can make), alternating gzipped (gz) and uncompressed (plain)
// responses. Reads change nothing, so it runs on exactly the state the
// controller is about to start on.
func listFloor(ctx context.Context, gz, plain kubernetes.Interface, apiserverPID int) (listTimes, error) {
	var out listTimes
	const rounds = 3
	for range rounds {
		for _, c := range []struct {
			cs   kubernetes.Interface
			best *time.Duration
			cpu  *float64
		}{{gz, &out.gzip, &out.gzipCPU}, {plain, &out.plain, &out.plainCPU}} {
			cpu := cpuSeconds(apiserverPID)
			t := time.Now()
			l, err := c.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return out, fmt.Errorf("list floor: %w", err)
			}
			if d := time.Since(t); *c.best == 0 || d < *c.best {
				*c.best = d
			}
			*c.cpu += (cpuSeconds(apiserverPID) - cpu) / rounds
			out.n = len(l.Items)
		}
	}
	return out, nil
}

// statusBody is the controller's status patch (reconciler.writeStatus): a
// JSON merge patch of status.loadBalancer.ingress.
func statusBody(ip string) []byte {
	b, _ := json.Marshal(map[string]any{"status": map[string]any{"loadBalancer": map[string]any{
		"ingress": []map[string]string{{"ip": ip}}}}})
	return b
}

// shapeBody is the status patch with the pool annotation in the same
// request, as the controller writes both (reconciler.writeShape).
func shapeBody(ip, pool string) []byte {
	b, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{v1beta1.AnnotationIPAllocatedFrom: pool}},
		"status":   map[string]any{"loadBalancer": map[string]any{"ingress": []map[string]string{{"ip": ip}}}}})
	return b
}

// patchFloor sends one patch per Service with the given number of workers
// and returns how long all of them took. subresource "status" or "".
func patchFloor(ctx context.Context, cs kubernetes.Interface, ns string, names []string, workers int,
	subresource string, body func(i int) []byte) (time.Duration, error) {
	var sub []string
	if subresource != "" {
		sub = []string{subresource}
	}
	t := time.Now()
	err := forEach(len(names), workers, func(i int) error {
		_, err := cs.CoreV1().Services(ns).Patch(ctx, names[i], types.MergePatchType, body(i), metav1.PatchOptions{}, sub...)
		if err != nil {
			return fmt.Errorf("patch floor: %s: %w", names[i], err)
		}
		return nil
	})
	return time.Since(t), err
}

// eventFloor creates n Events one at a time with a bare client, in JSON and
// in protobuf, alternating for the given rounds, and says how much CPU the
// apiserver spent on each batch (diagnostics: what an Event costs it beside
// a status patch, and what protobuf saves).
func eventFloor(ctx context.Context, cfg *rest.Config, apiserverPID, n, rounds int) (string, error) {
	encodings := []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf}
	clients := make([]kubernetes.Interface, len(encodings))
	for k, ct := range encodings {
		c := rest.CopyConfig(cfg)
		c.ContentType = ct
		cs, err := kubernetes.NewForConfig(c)
		if err != nil {
			return "", err
		}
		clients[k] = cs
	}
	spent := make([][]string, len(encodings))
	for r := range rounds {
		for k := range encodings {
			cpu0 := cpuSeconds(apiserverPID)
			for i := range n {
				now := metav1.Now()
				ev := &corev1.Event{
					ObjectMeta: metav1.ObjectMeta{Namespace: floorNS, Name: fmt.Sprintf("event-floor-%d-%d-%d", r, k, i)},
					InvolvedObject: corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: floorNS,
						Name: fmt.Sprintf("floor-%05d", i), ResourceVersion: "1"},
					Type: corev1.EventTypeNormal, Reason: "IPAllocated", Message: fmt.Sprintf("Assigned IP [%q]", floorIP(i)),
					Source: corev1.EventSource{Component: "bench"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
				}
				if _, err := clients[k].CoreV1().Events(floorNS).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
					return "", fmt.Errorf("event floor: %w", err)
				}
			}
			spent[k] = append(spent[k], fmt.Sprintf("%.2fs", cpuSeconds(apiserverPID)-cpu0))
		}
	}
	return fmt.Sprintf("JSON %s, protobuf %s", strings.Join(spent[0], " "), strings.Join(spent[1], " ")), nil
}

// floorIP is an address outside the bench pool, distinct per i, so every
// floor patch really changes the Service (as the controller's first write
// does).
func floorIP(i int) string { return fmt.Sprintf("10.201.%d.%d", i/250, i%250+1) }

// apiCounts reads the apiserver's apiserver_request_total and sums it by
// verb, resource and subresource (e.g. "PATCH services/status").
func apiCounts(ctx context.Context, cs kubernetes.Interface) (map[string]float64, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver metrics: %w", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(line[len("apiserver_request_total{"):end], ",") {
			k, val, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(val, `"`)
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		out[key] += v
		if key == "POST events" && labels["code"] == "201" {
			out[eventsCreated] += v
		}
	}
	return out, nil
}

// eventsCreated is apiCounts' count of Events created (the POSTs that
// succeeded), beside the requests by verb and resource.
const eventsCreated = "(events created)"

// missing marks a count that fell short of the Events expected.
func missing(all bool) string {
	if all {
		return ""
	}
	return " (not all: the wait timed out)"
}

// waitEvents polls the apiserver's request counts until n Events have been
// created since base (any Event: the controller's own, leader election's
// included), or timeout, and returns the counts, when it read
// them, and whether all n were there.
func waitEvents(ctx context.Context, cs kubernetes.Interface, base map[string]float64, n int, timeout time.Duration) (map[string]float64, time.Time, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		now, err := apiCounts(ctx, cs)
		if err != nil {
			return nil, time.Time{}, false, err
		}
		at := time.Now()
		if all := now[eventsCreated]-base[eventsCreated] >= float64(n); all || at.After(deadline) {
			return now, at, all, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// perService formats the requests made between two apiCounts readings:
// those made at least once per hundred Services per Service, largest first,
// and the others (fewer) as counts.
func perService(before, after map[string]float64, services int) (string, string) {
	type kv struct {
		k string
		v float64
	}
	var l []kv
	var fewer []string
	for k, v := range after {
		if k == eventsCreated {
			continue // counted among the POSTs
		}
		switch d := v - before[k]; {
		case d/float64(services) >= 0.01:
			l = append(l, kv{k, d / float64(services)})
		case d > 0:
			fewer = append(fewer, fmt.Sprintf("%s %.0f", k, d))
		}
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || l[i].v == l[j].v && l[i].k < l[j].k })
	var parts []string
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, e.v))
	}
	sort.Strings(fewer)
	return orNone(parts), orNone(fewer)
}

func orNone(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// serviceNames lists the names of the Services in ns with a prefix.
func serviceNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// watchListTime is how long a bare client takes to receive every Service as
// a watch stream (sendInitialEvents, as an informer with WatchListClient
// syncs), up to the bookmark that ends the initial events. Diagnostics: the
// controller's informer syncs this way.
func watchListTime(ctx context.Context, cs kubernetes.Interface) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	send := true
	t := time.Now()
	w, err := cs.CoreV1().Services("").Watch(ctx, metav1.ListOptions{SendInitialEvents: &send,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true})
	if err != nil {
		return 0, 0, fmt.Errorf("watch-list: %w", err)
	}
	defer w.Stop()
	n := 0
	for ev := range w.ResultChan() {
		switch ev.Type {
		case watch.Added:
			n++
		case watch.Bookmark:
			if m, err := meta.Accessor(ev.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
				return time.Since(t), n, nil
			}
		case watch.Error:
			return 0, n, fmt.Errorf("watch-list: %v", ev.Object)
		}
	}
	return 0, n, fmt.Errorf("watch-list: stream ended after %d Services", n)
}

// pagedListTime is how long a bare client takes to List every Service in
// pages of limit, each a consistent read (resourceVersion unset) as the
// controller's informer lists them (fastest of three). Diagnostics.
func pagedListTime(ctx context.Context, cs kubernetes.Interface, limit int64) (time.Duration, int, error) {
	best, n := time.Duration(0), 0
	for range 3 {
		t := time.Now()
		opts := metav1.ListOptions{Limit: limit}
		n = 0
		for {
			l, err := cs.CoreV1().Services("").List(ctx, opts)
			if err != nil {
				return 0, 0, fmt.Errorf("paged list: %w", err)
			}
			n += len(l.Items)
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
		}
		if d := time.Since(t); best == 0 || d < best {
			best = d
		}
	}
	return best, n, nil
}

// listOnceEnv, set to a kubeconfig path, makes the bench binary a bare
// client process that lists every Service once and exits (processFloor).
const listOnceEnv = "ECMPLB_BENCH_LIST_ONCE"

// listOnce is that process: a client as the floor's (protobuf), one List.
func listOnce(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, err = cs.CoreV1().Services("").List(context.Background(), metav1.ListOptions{})
	return err
}

// processFloor is the fastest of three runs of a new process (this bench's
// own binary) that lists every Service once, from exec to exit: what a
// restart cannot avoid besides the List itself (the process and its client
// start).
func processFloor(kubeconfig string) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	best := time.Duration(0)
	for range 3 {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), listOnceEnv+"="+kubeconfig)
		t := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("list process: %v: %s", err, out)
		}
		if d := time.Since(t); best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}
