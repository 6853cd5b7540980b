package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// apiRequest names a kind of request the apiserver counts.
type apiRequest struct {
	Verb, Resource string // Resource with "/subresource" when there is one
}

// apiRequests reads the apiserver's apiserver_request_total, summed over
// codes and versions, by verb and resource.
func (l *Lab) apiRequests(ctx context.Context) (map[apiRequest]float64, error) {
	page, err := l.Kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver /metrics: %w", err)
	}
	return parseRequestTotals(page)
}

// parseRequestTotals sums apiserver_request_total samples of a Prometheus text
// page by verb and resource (and subresource).
func parseRequestTotals(page []byte) (map[apiRequest]float64, error) {
	out := map[apiRequest]float64{}
	sc := bufio.NewScanner(bytes.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("malformed sample %q", sc.Text())
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("malformed sample %q: %w", sc.Text(), err)
		}
		ls := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				ls[k] = strings.Trim(val, `"`)
			}
		}
		r := apiRequest{Verb: ls["verb"], Resource: ls["resource"]}
		if sub := ls["subresource"]; sub != "" {
			r.Resource += "/" + sub
		}
		out[r] += v
	}
	return out, sc.Err()
}

// requestDelta is after minus before, the kinds that grew, most first.
func requestDelta(before, after map[apiRequest]float64) []apiRequestCount {
	var out []apiRequestCount
	for r, v := range after {
		if d := v - before[r]; d > 0 {
			out = append(out, apiRequestCount{r, d})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		if out[i].Resource != out[j].Resource {
			return out[i].Resource < out[j].Resource
		}
		return out[i].Verb < out[j].Verb
	})
	return out
}

type apiRequestCount struct {
	apiRequest
	N float64
}

// countStatuses counts the ServiceBGPStatus objects (metadata only).
func countStatuses(ctx context.Context, c client.Client) (int, error) {
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(v1beta1.GroupVersion.WithKind("ServiceBGPStatusList"))
	if err := c.List(ctx, &list, client.InNamespace(v1beta1.DefaultNamespaceName)); err != nil {
		return 0, fmt.Errorf("listing ServiceBGPStatus: %w", err)
	}
	return len(list.Items), nil
}

// waitStatuses polls, every second, until want ServiceBGPStatus objects exist
// or timeout passes; it returns when the count was reached and the last count.
func waitStatuses(ctx context.Context, c client.Client, want int, timeout time.Duration) (time.Time, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := countStatuses(ctx, c)
		if err != nil {
			return time.Time{}, n, err
		}
		if n >= want {
			return time.Now(), n, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, n, nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, n, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
