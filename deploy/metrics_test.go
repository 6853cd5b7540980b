package deploy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

// metallbMetric is one metric MetalLB v0.16.1 exposes, as its source defines
// it (read from github.com/metallb/metallb at tag v0.16.1; written down here,
// not imported).
type metallbMetric struct {
	name   string
	typ    dto.MetricType
	labels []string
	source string // file in MetalLB's repository
}

const (
	gauge   = dto.MetricType_GAUGE
	counter = dto.MetricType_COUNTER
)

var (
	peerOnly = []string{"peer"}
	peerVRF  = []string{"peer", "vrf"}
	pool     = []string{"pool"}
)

// MetalLB's metrics of the controller (component "controller") and of the
// speaker ("speaker"). A name defined twice (its native BGP speaker and its FRR
// mode's exporter label the BGP gauges differently) is exposed with the union
// of the label names, so queries written for either mode select it.
var metallbMetrics = map[string][]metallbMetric{
	"controller": {
		{"metallb_allocator_addresses_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_allocator_ipv4_addresses_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_allocator_ipv6_addresses_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_allocator_addresses_in_use_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_allocator_ipv4_addresses_in_use_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_allocator_ipv6_addresses_in_use_total", gauge, pool, "internal/allocator/stats.go"},
		{"metallb_k8s_client_updates_total", counter, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_update_errors_total", counter, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_config_loaded_bool", gauge, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_config_stale_bool", gauge, nil, "internal/k8s/controllers/stats.go"},
	},
	"speaker": {
		{"metallb_k8s_client_updates_total", counter, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_update_errors_total", counter, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_config_loaded_bool", gauge, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_k8s_client_config_stale_bool", gauge, nil, "internal/k8s/controllers/stats.go"},
		{"metallb_speaker_announced", gauge, []string{"service", "protocol", "node", "ip"}, "speaker/main.go"},
		{"metallb_bgp_session_up", gauge, peerOnly, "internal/bgp/native/stats.go"},
		{"metallb_bgp_updates_total", counter, peerOnly, "internal/bgp/native/stats.go"},
		{"metallb_bgp_announced_prefixes_total", gauge, peerOnly, "internal/bgp/native/stats.go"},
		{"metallb_bgp_pending_prefixes_total", gauge, peerOnly, "internal/bgp/native/stats.go"},
		{"metallb_bgp_session_up", gauge, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_announced_prefixes_total", gauge, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_opens_sent", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_opens_received", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_notifications_sent", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_updates_total", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_updates_total_received", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_keepalives_sent", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_keepalives_received", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_route_refresh_sent", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_total_sent", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bgp_total_received", counter, peerVRF, "frr-tools/metrics/collector/bgp.go"},
		{"metallb_bfd_session_up", gauge, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_control_packet_input", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_control_packet_output", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_echo_packet_input", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_echo_packet_output", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_session_up_events", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
		{"metallb_bfd_session_down_events", counter, peerVRF, "frr-tools/metrics/collector/bfd.go"},
	},
}

// notExposed are MetalLB metrics ecmplb has no equivalent for, and why; the
// test checks they are indeed absent (nothing half-done under their name).
var notExposed = map[string]string{
	"metallb_allocator_services_allocated_total": "internal/allocator/stats.go registers it but never sets a value: MetalLB exposes no series",
	"metallb_bfd_zebra_notifications":            "frr-tools/metrics/collector/bfd.go: bfdd's messages to FRR's zebra; ecmplb runs BFD itself, without zebra",
	"metallb_layer2_requests_received":           "internal/layer2/stats.go: ecmplb has no layer 2 mode",
	"metallb_layer2_responses_sent":              "internal/layer2/stats.go: ecmplb has no layer 2 mode",
	"metallb_layer2_gratuitous_sent":             "internal/layer2/stats.go: ecmplb has no layer 2 mode",
}

// want merges the rows of one component: per name, its type and the union of
// its label names.
func want(t *testing.T, component string) map[string]metallbMetric {
	t.Helper()
	out := map[string]metallbMetric{}
	for _, m := range metallbMetrics[component] {
		cur, ok := out[m.name]
		if !ok {
			out[m.name] = metallbMetric{m.name, m.typ, slices.Clone(m.labels), m.source}
			continue
		}
		if cur.typ != m.typ {
			t.Fatalf("table: %s is a %s in %s and a %s in %s", m.name, cur.typ, cur.source, m.typ, m.source)
		}
		for _, l := range m.labels {
			if !slices.Contains(cur.labels, l) {
				cur.labels = append(cur.labels, l)
			}
		}
		cur.source += ", " + m.source
		out[m.name] = cur
	}
	for _, m := range out {
		sort.Strings(m.labels)
	}
	return out
}

// scrape reads a component's /metrics as Prometheus would.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// labelNames of a family: the union over its series.
func labelNames(mf *dto.MetricFamily) []string {
	var out []string
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(out, l.GetName()) {
				out = append(out, l.GetName())
			}
		}
	}
	sort.Strings(out)
	return out
}

// compareWithMetalLB lists every difference between what a component exposes
// and MetalLB's table: a missing name, another type or other label names, a
// metallb_ name MetalLB does not have, one MetalLB has that ecmplb says it
// lacks.
func compareWithMetalLB(t *testing.T, component string, got map[string]*dto.MetricFamily) []string {
	var diffs []string
	for name, w := range want(t, component) {
		mf, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: %s (%s) not exposed", component, name, w.source))
		case mf.GetType() != w.typ:
			diffs = append(diffs, fmt.Sprintf("%s: %s is a %s, MetalLB's (%s) a %s", component, name, mf.GetType(), w.source, w.typ))
		case !slices.Equal(labelNames(mf), w.labels):
			diffs = append(diffs, fmt.Sprintf("%s: %s has labels %v, MetalLB's (%s) %v", component, name, labelNames(mf), w.source, w.labels))
		}
	}
	all := map[string]bool{}
	for _, rows := range metallbMetrics {
		for _, m := range rows {
			all[m.name] = true
		}
	}
	for name := range got {
		if why, ok := notExposed[name]; ok {
			diffs = append(diffs, fmt.Sprintf("%s: exposes %s, listed as absent (%s)", component, name, why))
		} else if strings.HasPrefix(name, "metallb_") && !all[name] {
			diffs = append(diffs, fmt.Sprintf("%s: exposes %s, which MetalLB v0.16.1 does not have", component, name))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The real controller and speaker expose MetalLB's metrics under MetalLB's
// names, types and label names, scraped from their /metrics while they
// allocate, announce and run a BGP session with BFD. Everything stays on
// loopback: the peer is 127.0.0.2, where nothing answers (the session is
// down, its counters and series exist).
func TestMetricsMatchMetalLB(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	if out, err := kubectl(t, env, "", "apply", "-f", "ecmplb.yaml"); err != nil {
		t.Fatalf("kubectl apply -f ecmplb.yaml: %v\n%s", err, out)
	}
	// The controller first: its webhooks admit the configuration.
	ctrlAddr := freeLoopbackAddr(t)
	ctrl := startBinary(t, "./controller", append([]string{"--kubeconfig", env.Kubeconfig, "--namespace", "metallb-system",
		"--metrics-addr", ctrlAddr, "--health-addr", "0", "--leader-elect=false"}, serveWebhooks(t, env)...)...)
	waitWebhooks(t, env, func() string { return ctrl.Tail(50) })
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"examples/01-pool.yaml", "examples/03-advertisement.yaml", "examples/04-service.yaml"} {
		if out, err := kubectl(t, env, "", "apply", "-f", f); err != nil {
			t.Fatalf("apply %s: %v\n%s", f, err, out)
		}
	}
	const peer = `apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: fast, namespace: metallb-system}
spec: {receiveInterval: 300, transmitInterval: 300, detectMultiplier: 3}
---
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: loop, namespace: metallb-system}
spec: {myASN: 65100, peerASN: 65000, peerAddress: 127.0.0.2, peerPort: 1, bfdProfile: fast}
`
	if out, err := kubectl(t, env, peer, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply peer: %v\n%s", err, out)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}, NodeName: ptr.To("node1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8443)}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spkAddr := freeLoopbackAddr(t)
	spk := startBinary(t, "./speaker", "--kubeconfig", env.Kubeconfig, "--node-name", "node1",
		"--namespace", "metallb-system", "--metrics-addr", spkAddr)

	for component, url := range map[string]string{"controller": "http://" + ctrlAddr + "/metrics", "speaker": "http://" + spkAddr + "/metrics"} {
		var diffs []string
		deadline := time.Now().Add(60 * time.Second)
		for {
			got, err := scrape(url)
			if err != nil {
				diffs = []string{err.Error()}
			} else {
				diffs = compareWithMetalLB(t, component, got)
			}
			if len(diffs) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(diffs) > 0 {
			p := ctrl
			if component == "speaker" {
				p = spk
			}
			t.Errorf("%s /metrics differs from MetalLB v0.16.1:\n%s\n%s", component, strings.Join(diffs, "\n"), p.Tail(30))
		}
	}

	// Both report their ConfigurationState, as MetalLB's do: Valid, then
	// Invalid naming an object that is rejected and why, then Valid again.
	dyn := dynamic.NewForConfigOrDie(env.Config)
	states := dyn.Resource(schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "configurationstates"}).
		Namespace("metallb-system")
	waitStates := func(result, substr string) {
		t.Helper()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			for _, name := range []string{"controller", "speaker-node1"} {
				o, err := states.Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					last = err.Error()
					return false, nil
				}
				r, _, _ := unstructured.NestedString(o.Object, "status", "result")
				sum, _, _ := unstructured.NestedString(o.Object, "status", "errorSummary")
				last = fmt.Sprintf("%s: %s %q", name, r, sum)
				if r != result || !strings.Contains(sum, substr) {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("ConfigurationStates not %s with %q: %v; last %s", result, substr, err, last)
		}
	}
	waitStates("Valid", "")
	// What the CRD schema cannot judge alone (a pool overlapping another)
	// reaches the components when no webhook refuses it (webhooks.enabled
	// false, or configuration written while it was off): they report it.
	if out, err := kubectl(t, env, "", "delete", "validatingwebhookconfiguration", "ecmplb-webhook"); err != nil {
		t.Fatalf("delete webhook configuration: %v\n%s", err, out)
	}
	const bad = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad-pool, namespace: metallb-system}
spec: {addresses: [203.0.113.128/25]}
`
	if out, err := kubectl(t, env, bad, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply bad pool: %v\n%s", err, out)
	}
	waitStates("Invalid", `overlaps IPAddressPool "prod-pool"`)
	if out, err := kubectl(t, env, "", "delete", "ipaddresspool", "-n", "metallb-system", "bad-pool"); err != nil {
		t.Fatalf("delete bad pool: %v\n%s", err, out)
	}
	waitStates("Valid", "")
}
