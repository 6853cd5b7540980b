package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/app"
	"github.com/ecmplb/ecmplb/controller/reconciler"
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

const poolNS = "metallb-system"

// harness is a control plane plus in-process controller replicas.
type harness struct {
	t   *testing.T
	env *testenv.Env
	c   client.Client
	cs  *kubernetes.Clientset
}

func newHarness(t *testing.T) *harness {
	env := testenv.Start(t, testenv.Options{
		// Dual-stack Services need a dual-stack ClusterIP range.
		ExtraAPIServerArgs: []string{"--service-cluster-ip-range=10.96.0.0/16,fd00:96::/108"},
	})
	c, err := client.New(env.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, env: env, c: c, cs: cs}
}

// servicePatches counts, from the apiserver's own metrics, the PATCH
// requests on Services so far by subresource ("" for the object itself).
func (h *harness) servicePatches(ctx context.Context) map[string]float64 {
	h.t.Helper()
	page, err := h.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(page), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="services"`) ||
			!strings.Contains(line, `verb="PATCH"`) || !strings.Contains(line, `group=""`) {
			continue
		}
		sub := ""
		if _, rest, ok := strings.Cut(line, `subresource="`); ok {
			sub, _, _ = strings.Cut(rest, `"`)
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err != nil {
			h.t.Fatalf("apiserver metric %q: %v", line, err)
		}
		out[sub] += v
	}
	return out
}

// replica is one running controller.
type replica struct {
	cancel context.CancelFunc
	done   chan error
	ctrl   *reconciler.Controller
	reg    *prometheus.Registry
}

func (h *harness) startController(name string) *replica {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{cancel: cancel, done: make(chan error, 1), reg: prometheus.NewRegistry()}
	started := make(chan struct{})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", name)
	go func() {
		r.done <- app.Run(ctx, h.env.Config, app.Config{
			Namespace:          poolNS,
			MetricsAddr:        "0",
			HealthAddr:         "0",
			LeaderElect:        true,
			LeaseDuration:      3 * time.Second,
			RenewDeadline:      2 * time.Second,
			RetryPeriod:        200 * time.Millisecond,
			QPS:                1000,
			Burst:              2000,
			Workers:            8,
			StatusInterval:     100 * time.Millisecond,
			EventMaxHold:       5 * time.Second,
			PoolAnnotation:     true,
			ConfigurationState: true,
			Logger:             log,
			Registry:           r.reg,
			SkipNameValidation: true,
			Started:            func(c *reconciler.Controller) { r.ctrl = c; close(started) },
		})
	}()
	select {
	case <-started:
	case err := <-r.done:
		h.t.Fatalf("controller %s did not start: %v", name, err)
	}
	h.t.Cleanup(r.stop)
	return r
}

func (r *replica) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

func (h *harness) pool(name string, mut func(*v1beta1.IPAddressPool), addrs ...string) {
	h.t.Helper()
	p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: name},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	if mut != nil {
		mut(p)
	}
	if err := h.c.Create(context.Background(), p); err != nil {
		h.t.Fatalf("create pool %s: %v", name, err)
	}
}

func (h *harness) service(ns, name string, mut func(*corev1.Service)) {
	h.t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			AllocateLoadBalancerNodePorts: ptr(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "p", Port: 443, Protocol: corev1.ProtocolTCP}},
		},
	}
	if mut != nil {
		mut(s)
	}
	if err := h.c.Create(context.Background(), s); err != nil {
		h.t.Fatalf("create service %s/%s: %v", ns, name, err)
	}
}

func ptr[T any](v T) *T { return &v }

func (h *harness) ips(ns, name string) []string {
	s := &corev1.Service{}
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return []string{"<" + err.Error() + ">"}
	}
	var out []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		out = append(out, in.IP)
	}
	return out
}

func (h *harness) waitIPs(ns, name string, want ...string) {
	h.t.Helper()
	waitFor(h.t, 15*time.Second, fmt.Sprintf("%s/%s to have IPs %v", ns, name, want), func() (bool, string) {
		got := h.ips(ns, name)
		return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprint(got)
	})
}

// eventHolds reads the replica's ecmplb_controller_event_hold_seconds:
// how many Events were sent, and how many of them were held 0.1 s or less.
func eventHolds(t *testing.T, r *replica) (n, quick uint64) {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ecmplb_controller_event_hold_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			n += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 0.1 {
					quick += b.GetCumulativeCount()
				}
			}
		}
	}
	return n, quick
}

// waitEvent waits for an Event with reason on the object whose message
// contains substr.
func (h *harness) waitEvent(ns, kind, name, reason, substr string) {
	h.t.Helper()
	waitFor(h.t, 15*time.Second, fmt.Sprintf("event %s on %s %s/%s containing %q", reason, kind, ns, name, substr), func() (bool, string) {
		evs, err := h.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
				seen = append(seen, e.Reason+": "+e.Message)
				if e.Reason == reason && strings.Contains(e.Message, substr) {
					return true, ""
				}
			}
		}
		return false, fmt.Sprint(seen)
	})
}

// waitConfigState waits for the controller's ConfigurationState to say
// result, with an error summary containing substr and not absent.
func (h *harness) waitConfigState(result v1beta1.ConfigurationResult, substr, absent string) {
	h.t.Helper()
	waitFor(h.t, 15*time.Second, fmt.Sprintf("ConfigurationState controller %s with %q", result, substr), func() (bool, string) {
		cs := &v1beta1.ConfigurationState{}
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: poolNS, Name: "controller"}, cs); err != nil {
			return false, err.Error()
		}
		st := cs.Status
		ok := st.Result == result && strings.Contains(st.ErrorSummary, substr) && (absent == "" || !strings.Contains(st.ErrorSummary, absent)) &&
			cs.Labels[v1beta1.LabelComponentType] == "controller"
		return ok, fmt.Sprintf("%+v %v", st, cs.Labels)
	})
}

func (h *harness) poolStatus(name string) v1beta1.IPAddressPoolStatus {
	p := &v1beta1.IPAddressPool{}
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: poolNS, Name: name}, p); err != nil {
		h.t.Fatal(err)
	}
	return p.Status
}

func (h *harness) waitPoolCondition(name, typ string, status metav1.ConditionStatus, substr string) {
	h.t.Helper()
	waitFor(h.t, 15*time.Second, fmt.Sprintf("pool %s condition %s=%s", name, typ, status), func() (bool, string) {
		st := h.poolStatus(name)
		c := meta.FindStatusCondition(st.Conditions, typ)
		if c == nil {
			return false, fmt.Sprintf("%+v", st)
		}
		return c.Status == status && strings.Contains(c.Message, substr), fmt.Sprintf("%+v", *c)
	})
}

func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver and etcd (make kube); skipped with -short")
	}
	h := newHarness(t)
	ctx := context.Background()
	for _, ns := range []string{"team-a", "team-b"} {
		if err := h.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"team": ns}}}); err != nil {
			t.Fatal(err)
		}
	}
	active := h.startController("first")

	t.Run("allocate, status, events, pool status", func(t *testing.T) {
		h.t = t
		h.pool("prod-pool", nil, "203.0.113.0/24")
		h.service("default", "web", func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		})
		h.waitIPs("default", "web", "203.0.113.0")
		h.waitEvent("default", "Service", "web", reconciler.ReasonIPAllocated, "203.0.113.0")
		// One allocation, one Event, sent once (issue 12: a broadcaster shared
		// by two recorder providers sent each Event twice).
		time.Sleep(500 * time.Millisecond)
		if evs, err := h.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.name=web,reason=" + reconciler.ReasonIPAllocated}); err != nil || len(evs.Items) != 1 || evs.Items[0].Count != 1 {
			t.Fatalf("IPAllocated Events for web: %v, %v; want one, count 1", evs, err)
		}
		waitFor(t, 10*time.Second, "pool annotation", func() (bool, string) {
			s := &corev1.Service{}
			_ = h.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, s)
			v := s.Annotations[v1beta1.AnnotationIPAllocatedFrom]
			return v == "prod-pool", v
		})
		// The address and the pool annotation in one write: a merge patch
		// of the status subresource carries both (issue 12: one write
		// fewer per allocation, a third of the backlog's requests).
		if got := h.servicePatches(ctx); len(got) != 1 || got["status"] != 1 {
			t.Fatalf("Service PATCH requests by subresource for one allocation: %v, want one of status only", got)
		}
		h.waitPoolCondition("prod-pool", reconciler.ConditionValid, metav1.ConditionTrue, "")
		h.waitConfigState(v1beta1.ConfigurationValid, "", "")
		waitFor(t, 10*time.Second, "metrics", func() (bool, string) {
			mfs, err := active.reg.Gather()
			if err != nil {
				return false, err.Error()
			}
			got := map[string]float64{}
			for _, mf := range mfs {
				for _, m := range mf.GetMetric() {
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					for _, l := range m.GetLabel() {
						if l.GetName() == "pool" && l.GetValue() != "prod-pool" {
							v = 0
						}
						if l.GetName() == "family" && l.GetValue() != "IPv4" {
							v = 0
						}
					}
					got[mf.GetName()] += v
				}
			}
			ok := got["ecmplb_controller_allocations_total"] == 1 &&
				got["metallb_allocator_addresses_total"] == 256 &&
				got["metallb_allocator_ipv4_addresses_total"] == 256 &&
				got["metallb_allocator_ipv6_addresses_total"] == 0 &&
				got["metallb_allocator_addresses_in_use_total"] == 1 &&
				got["metallb_allocator_ipv4_addresses_in_use_total"] == 1 &&
				got["metallb_k8s_client_config_loaded_bool"] == 1 &&
				got["metallb_k8s_client_config_stale_bool"] == 0 &&
				got["metallb_k8s_client_updates_total"] >= 2
			return ok, fmt.Sprint(got)
		})
		waitFor(t, 10*time.Second, "pool counters", func() (bool, string) {
			st := h.poolStatus("prod-pool")
			return st.AssignedIPv4 == 1 && st.AvailableIPv4 == 255, fmt.Sprintf("%+v", st)
		})
		// The IPAllocated Event waited for the write of the address it
		// announces (recorded first) and went Quiet after it.
		if n, quick := eventHolds(t, active); n == 0 || quick == n {
			t.Fatalf("Events sent: %d, %d of them held 0.1 s or less; want the IPAllocated Event held for its write", n, quick)
		}
	})

	t.Run("requested IP, requested pool, autoAssign, sharing", func(t *testing.T) {
		h.t = t
		h.pool("reserved", func(p *v1beta1.IPAddressPool) {
			p.Spec.AutoAssign = ptr(false)
			p.Spec.AvoidBuggyIPs = true
		}, "198.51.100.0/24")
		h.service("default", "fixed", func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.77"
		})
		h.waitIPs("default", "fixed", "203.0.113.77")
		h.service("default", "gold", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "reserved" })
		h.waitIPs("default", "gold", "198.51.100.1") // .0 avoided
		h.service("default", "dns-tcp", func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationAllowSharedIP] = "dns"
			s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolTCP}}
		})
		h.service("default", "dns-udp", func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationAllowSharedIP] = "dns"
			s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}
		})
		h.waitIPs("default", "dns-tcp", "203.0.113.1")
		h.waitIPs("default", "dns-udp", "203.0.113.1")
	})

	t.Run("serviceAllocation and priority", func(t *testing.T) {
		h.t = t
		h.pool("team-a-pool", func(p *v1beta1.IPAddressPool) {
			p.Spec.AllocateTo = &v1beta1.ServiceAllocation{Priority: 10,
				NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "team-a"}}}}
		}, "192.0.2.0/28")
		h.service("team-a", "api", nil)
		h.service("team-b", "api", nil)
		h.waitIPs("team-a", "api", "192.0.2.0")
		h.waitIPs("team-b", "api", "203.0.113.2")
	})

	t.Run("dual-stack", func(t *testing.T) {
		h.t = t
		h.pool("dual", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "100.64.0.0/30", "2001:db8::/64")
		h.service("default", "both", func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationAddressPool] = "dual"
			s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyRequireDualStack)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		})
		h.waitIPs("default", "both", "100.64.0.0", "2001:db8::")
	})

	t.Run("bad input is reported and disturbs nothing", func(t *testing.T) {
		h.t = t
		// The schema takes only CIDRs and one-family ranges; a reversed range
		// passes it (as anything may when stored before the schema's rules or
		// with the webhook off) and only the controller can judge it.
		h.pool("bad-pool", nil, "10.1.0.0/24", "10.0.0.9-10.0.0.1")
		h.waitEvent(poolNS, "IPAddressPool", "bad-pool", reconciler.ReasonInvalidConfig,
			`IPAddressPool metallb-system/bad-pool: spec.addresses[1]: "10.0.0.9-10.0.0.1" has its end before its start`)
		h.waitPoolCondition("bad-pool", reconciler.ConditionValid, metav1.ConditionFalse, `"10.0.0.9-10.0.0.1" has its end before its start`)
		h.waitConfigState(v1beta1.ConfigurationInvalid, `IPAddressPool metallb-system/bad-pool: spec.addresses[1]: "10.0.0.9-10.0.0.1" has its end before its start`, "")
		time.Sleep(1100 * time.Millisecond) // surely younger than prod-pool (creationTimestamp has 1 s resolution)
		h.pool("overlap", nil, "203.0.113.128/25")
		h.waitPoolCondition("overlap", reconciler.ConditionValid, metav1.ConditionFalse, `overlaps IPAddressPool "prod-pool"`)
		h.service("default", "outside", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "172.16.0.1" })
		h.waitEvent("default", "Service", "outside", reconciler.ReasonAllocationFailed, "172.16.0.1 is not in any IPAddressPool")
		h.service("default", "nopool", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "nope" })
		h.waitEvent("default", "Service", "nopool", reconciler.ReasonAllocationFailed, `IPAddressPool "nope"`)
		h.service("default", "garbage", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "1.2.3" })
		h.waitEvent("default", "Service", "garbage", reconciler.ReasonInvalidRequest, `metadata.annotations[metallb.io/loadBalancerIPs]: "1.2.3"`)
		h.service("default", "both-ways", func(s *corev1.Service) {
			s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.90"
			s.Spec.LoadBalancerIP = "203.0.113.91"
		})
		h.waitEvent("default", "Service", "both-ways", reconciler.ReasonInvalidRequest,
			"metadata.annotations[metallb.io/loadBalancerIPs] and spec.loadBalancerIP are both set")
		if got := h.ips("default", "both-ways"); len(got) != 0 {
			t.Fatalf("Service with both spec.loadBalancerIP and the annotation got %v", got)
		}
		if got := h.ips("default", "web"); strings.Join(got, ",") != "203.0.113.0" {
			t.Fatalf("web changed to %v", got)
		}
		// Deleting the pool it overlapped lets the rejected pool in later;
		// here fix the bad pool instead and see it accepted.
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "bad-pool"}}
		h.update(p, func() {
			p.Spec.Addresses = []string{"10.1.0.0/24"}
			p.Spec.AutoAssign = ptr(false)
		})
		h.waitPoolCondition("bad-pool", reconciler.ConditionValid, metav1.ConditionTrue, "")
		// Only the overlapping pool is left in the controller's ConfigurationState.
		h.waitConfigState(v1beta1.ConfigurationInvalid, `IPAddressPool metallb-system/overlap: `, "bad-pool")
		// The Service that named a missing pool gets an IP once it exists.
		h.pool("nope", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "10.2.0.0/30")
		h.waitIPs("default", "nopool", "10.2.0.0")
	})

	t.Run("class, type change and delete release", func(t *testing.T) {
		h.t = t
		h.service("default", "foreign", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr("other.example/lb") })
		h.service("default", "tmp", nil)
		h.waitIPs("default", "tmp", "203.0.113.3")
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tmp"}}
		h.update(s, func() {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
		})
		h.waitIPs("default", "tmp")
		h.waitEvent("default", "Service", "tmp", reconciler.ReasonIPReleased, "203.0.113.3")
		h.service("default", "tmp2", nil)
		h.waitIPs("default", "tmp2", "203.0.113.3")
		if err := h.c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tmp2"}}); err != nil {
			t.Fatal(err)
		}
		h.service("default", "tmp3", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationLoadBalancerIPs] = "203.0.113.3" })
		h.waitIPs("default", "tmp3", "203.0.113.3")
		// Exhaustion: the waiting Service gets the address once it is freed.
		h.pool("tiny", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "10.3.0.9/32")
		h.service("default", "holder", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "tiny" })
		h.waitIPs("default", "holder", "10.3.0.9")
		h.service("default", "waiter", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "tiny" })
		h.waitEvent("default", "Service", "waiter", reconciler.ReasonAllocationFailed, "no free address")
		if err := h.c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "holder"}}); err != nil {
			t.Fatal(err)
		}
		h.waitIPs("default", "waiter", "10.3.0.9")
		if got := h.ips("default", "foreign"); len(got) != 0 {
			t.Fatalf("Service of another class got %v", got)
		}
	})

	t.Run("pool shrink keeps and reports", func(t *testing.T) {
		h.t = t
		h.service("default", "shrunk", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "nope" })
		h.waitIPs("default", "shrunk", "10.2.0.1")
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "nope"}}
		h.update(p, func() { p.Spec.Addresses = []string{"10.2.0.0/32"} })
		h.waitPoolCondition("nope", reconciler.ConditionOutsidePool, metav1.ConditionTrue, "1 allocated IP")
		h.waitEvent("default", "Service", "shrunk", reconciler.ReasonIPNotInPool, "10.2.0.1")
		h.waitEvent(poolNS, "IPAddressPool", "nope", reconciler.ReasonOutsidePool, "not reassigned")
		h.waitIPs("default", "shrunk", "10.2.0.1")
	})

	// snapshot of every Service's IPs
	snapshot := func() map[string]string {
		var list corev1.ServiceList
		if err := h.c.List(ctx, &list); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, s := range list.Items {
			var ips []string
			for _, in := range s.Status.LoadBalancer.Ingress {
				ips = append(ips, in.IP)
			}
			out[s.Namespace+"/"+s.Name] = strings.Join(ips, ",")
		}
		return out
	}

	t.Run("restart keeps every IP", func(t *testing.T) {
		h.t = t
		before := snapshot()
		active.stop()
		// A Service created while no controller runs.
		h.service("default", "while-down", nil)
		active = h.startController("second")
		waitFor(t, 15*time.Second, "while-down to get an IP", func() (bool, string) {
			got := h.ips("default", "while-down")
			return len(got) == 1, fmt.Sprint(got)
		})
		after := snapshot()
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s changed across restart: %q -> %q", k, v, after[k])
			}
		}
		for k, v := range before {
			if v != "" && v == after["default/while-down"] && k != "default/while-down" {
				t.Fatalf("new Service got %s's IP %s", k, v)
			}
		}
	})

	t.Run("two replicas and a leader change never duplicate", func(t *testing.T) {
		h.t = t
		h.pool("load", nil, "172.20.0.0/22")
		h.startController("third") // standby
		// Watch every Service; record each IP's holders over time.
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		w, err := h.cs.CoreV1().Services("load").Watch(wctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		holder := map[string]string{} // IP -> Service
		current := map[string]string{}
		var violations []string
		go func() {
			for ev := range w.ResultChan() {
				s, ok := ev.Object.(*corev1.Service)
				if !ok {
					continue
				}
				mu.Lock()
				key := s.Name
				if old := current[key]; old != "" {
					if ev.Type == watch.Deleted || len(s.Status.LoadBalancer.Ingress) == 0 || s.Status.LoadBalancer.Ingress[0].IP != old {
						if ev.Type != watch.Deleted {
							violations = append(violations, fmt.Sprintf("%s changed from %s", key, old))
						}
						delete(holder, old)
						delete(current, key)
					}
				}
				if ev.Type != watch.Deleted && len(s.Status.LoadBalancer.Ingress) > 0 {
					ip := s.Status.LoadBalancer.Ingress[0].IP
					if other, ok := holder[ip]; ok && other != key {
						violations = append(violations, fmt.Sprintf("%s held by %s and %s", ip, other, key))
					}
					holder[ip], current[key] = key, ip
				}
				mu.Unlock()
			}
		}()
		if err := h.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "load"}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		const n = 300
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h.service("load", fmt.Sprintf("s%03d", i), func(s *corev1.Service) {
					s.Annotations[v1beta1.AnnotationAddressPool] = "load"
				})
			}()
			if i == n/2 {
				// Hand over leadership in the middle of the burst.
				wg.Wait()
				active.stop()
			}
		}
		wg.Wait()
		waitFor(t, 60*time.Second, "all load Services to have an IP", func() (bool, string) {
			var list corev1.ServiceList
			_ = h.c.List(ctx, &list, client.InNamespace("load"))
			got := 0
			for _, s := range list.Items {
				if len(s.Status.LoadBalancer.Ingress) > 0 {
					got++
				}
			}
			return got == n, fmt.Sprintf("%d/%d", got, n)
		})
		final := map[string]string{}
		var list corev1.ServiceList
		_ = h.c.List(ctx, &list, client.InNamespace("load"))
		for _, s := range list.Items {
			ip := s.Status.LoadBalancer.Ingress[0].IP
			if other, dup := final[ip]; dup {
				t.Fatalf("%s assigned to %s and %s", ip, other, s.Name)
			}
			if !netip.MustParsePrefix("172.20.0.0/22").Contains(netip.MustParseAddr(ip)) {
				t.Fatalf("%s got %s outside its pool", s.Name, ip)
			}
			final[ip] = s.Name
		}
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if len(violations) > 0 {
			t.Fatalf("violations: %v", violations)
		}
	})
}

// update re-reads an object, changes it and writes it back (again on a
// conflict: the controller writes status meanwhile).
func (h *harness) update(obj client.Object, mut func()) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mut()
		return h.c.Update(context.Background(), obj)
	})
	if err != nil {
		h.t.Fatalf("update %s: %v", obj.GetName(), err)
	}
}

// TestIntegrationRestartDecidesAsRunning (issue #8, 7 and 12): pool overlaps,
// invalid pool edits and sharing conflicts are decided by the objects alone,
// so a controller restarted after a change decides as one that saw it happen.
func TestIntegrationRestartDecidesAsRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver and etcd (make kube); skipped with -short")
	}
	h := newHarness(t)
	first := h.startController("first")

	t.Run("overlap: the older pool wins, whatever came first", func(t *testing.T) {
		h.t = t
		// older is created first but invalid, so younger is accepted meanwhile.
		h.pool("older", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "198.51.100.9-198.51.100.0")
		h.waitPoolCondition("older", reconciler.ConditionValid, metav1.ConditionFalse, "has its end before its start")
		time.Sleep(1100 * time.Millisecond) // creationTimestamp has 1 s resolution
		h.pool("younger", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "198.51.100.0/25")
		h.waitPoolCondition("younger", reconciler.ConditionValid, metav1.ConditionTrue, "")
		// Fixed, older overlaps younger and, being older, takes over.
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "older"}}
		h.update(p, func() { p.Spec.Addresses = []string{"198.51.100.0/24"} })
		h.waitPoolCondition("older", reconciler.ConditionValid, metav1.ConditionTrue, "")
		h.waitPoolCondition("younger", reconciler.ConditionValid, metav1.ConditionFalse,
			`spec.addresses[0]: overlaps IPAddressPool "older" in 198.51.100.0-198.51.100.127`)
		h.waitEvent(poolNS, "IPAddressPool", "younger", reconciler.ReasonInvalidConfig, `IPAddressPool metallb-system/younger: spec.addresses[0]: overlaps IPAddressPool "older"`)
	})

	t.Run("an invalid edit rejects the pool, running or restarted", func(t *testing.T) {
		h.t = t
		h.pool("edit-pool", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "10.9.0.0/30")
		h.service("default", "e1", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "edit-pool" })
		h.waitIPs("default", "e1", "10.9.0.0")
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "edit-pool"}}
		h.update(p, func() { p.Spec.Addresses = []string{"10.9.0.3-10.9.0.0"} })
		h.waitPoolCondition("edit-pool", reconciler.ConditionValid, metav1.ConditionFalse, `"10.9.0.3-10.9.0.0" has its end before its start`)
		h.service("default", "e2", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "edit-pool" })
		h.waitEvent("default", "Service", "e2", reconciler.ReasonAllocationFailed, `IPAddressPool "edit-pool"`)
		if got := h.ips("default", "e2"); len(got) != 0 {
			t.Fatalf("e2 got %v from a rejected pool", got)
		}
	})

	t.Run("sharing conflict while down: the Service that changed moves", func(t *testing.T) {
		h.t = t
		h.pool("share-pool", func(p *v1beta1.IPAddressPool) { p.Spec.AutoAssign = ptr(false) }, "10.8.0.0/30")
		shared := func(port int32) func(*corev1.Service) {
			return func(s *corev1.Service) {
				s.Annotations[v1beta1.AnnotationAddressPool] = "share-pool"
				s.Annotations[v1beta1.AnnotationAllowSharedIP] = "k"
				s.Spec.Selector = map[string]string{"app": "shared"}
				s.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: port, Protocol: corev1.ProtocolTCP}}
			}
		}
		h.service("default", "s-old", shared(80))
		h.waitIPs("default", "s-old", "10.8.0.0")
		time.Sleep(1100 * time.Millisecond)
		h.service("default", "s-new", shared(443))
		h.waitIPs("default", "s-new", "10.8.0.0")
		first.stop()
		time.Sleep(1100 * time.Millisecond) // managedFields times have 1 s resolution
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s-old"}}
		h.update(s, func() { s.Spec.Ports[0].Port = 443 })
		first = h.startController("second")
		h.waitIPs("default", "s-old", "10.8.0.1")
		h.waitIPs("default", "s-new", "10.8.0.0")

		// After the restart the invalid pool is still rejected and nothing moved.
		h.service("default", "e3", func(s *corev1.Service) { s.Annotations[v1beta1.AnnotationAddressPool] = "edit-pool" })
		h.waitEvent("default", "Service", "e3", reconciler.ReasonAllocationFailed, `IPAddressPool "edit-pool"`)
		if got := h.ips("default", "e2"); len(got) != 0 {
			t.Fatalf("e2 got %v after the restart", got)
		}
		h.waitIPs("default", "e1", "10.9.0.0")
		h.waitPoolCondition("younger", reconciler.ConditionValid, metav1.ConditionFalse, `overlaps IPAddressPool "older"`)
		h.waitPoolCondition("older", reconciler.ConditionValid, metav1.ConditionTrue, "")
		// Fixing the pool serves the waiting Services.
		p := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: poolNS, Name: "edit-pool"}}
		h.update(p, func() { p.Spec.Addresses = []string{"10.9.0.0/30"} })
		waitFor(t, 15*time.Second, "e2 and e3 to get IPs", func() (bool, string) {
			a, b := h.ips("default", "e2"), h.ips("default", "e3")
			return len(a) == 1 && len(b) == 1 && a[0] != b[0] && a[0] != "10.9.0.0" && b[0] != "10.9.0.0", fmt.Sprint(a, b)
		})
	})
}
