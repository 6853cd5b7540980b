package mode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness/lease"
)

// cuttable is a node's way to the apiserver, which the test can cut.
type cuttable struct {
	lease.Leases
	cut atomic.Bool
	// lists counts List calls (the Lease informer's start).
	lists atomic.Int32
}

var errCut = errors.New("cut off from the apiserver")

func (c *cuttable) List(ctx context.Context, o metav1.ListOptions) (*coordv1.LeaseList, error) {
	c.lists.Add(1)
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Leases.List(ctx, o)
}

func (c *cuttable) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Leases.Watch(ctx, o)
}

func (c *cuttable) Get(ctx context.Context, name string, o metav1.GetOptions) (*coordv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Leases.Get(ctx, name, o)
}

func (c *cuttable) Create(ctx context.Context, l *coordv1.Lease, o metav1.CreateOptions) (*coordv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Leases.Create(ctx, l, o)
}

func (c *cuttable) Update(ctx context.Context, l *coordv1.Lease, o metav1.UpdateOptions) (*coordv1.Lease, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.Leases.Update(ctx, l, o)
}

// timeline is a responder that records when each IP starts and stops being
// answered.
type timeline struct {
	mu    sync.Mutex
	want  map[string][]netip.Addr
	spans map[netip.Addr][][2]time.Time // [start, end); end zero while answered
}

func newTimeline() *timeline {
	return &timeline{want: map[string][]netip.Addr{}, spans: map[netip.Addr][][2]time.Time{}}
}

func (r *timeline) Set(ifName string, ips []netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, ip := range r.want[ifName] {
		if !slices.Contains(ips, ip) {
			s := r.spans[ip]
			s[len(s)-1][1] = now
		}
	}
	for _, ip := range ips {
		if !slices.Contains(r.want[ifName], ip) {
			r.spans[ip] = append(r.spans[ip], [2]time.Time{now})
		}
	}
	r.want[ifName] = slices.Clone(ips)
	return nil
}

func (r *timeline) Answering(ifName string) []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.want[ifName])
}

func (r *timeline) get(ip netip.Addr) [][2]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans[ip])
}

// overlap returns a moment both answered ip, if any.
func overlap(a, b [][2]time.Time) (time.Time, bool) {
	end := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Now().Add(time.Hour)
		}
		return t
	}
	for _, x := range a {
		for _, y := range b {
			if x[0].Before(end(y[1])) && y[0].Before(end(x[1])) {
				return later(x[0], y[0]), true
			}
		}
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

const leaseNS = "ecmplb-l2"

var (
	leasePeriod = 250 * time.Millisecond
	leaseCfg    = liveness.Config{Threshold: time.Second, Margin: 200 * time.Millisecond, MaxTickGap: 125 * time.Millisecond}
)

type leaseNode struct {
	name   string
	api    *cuttable
	resp   *timeline
	status *watchedStatus
	rt     *Runtime
	cancel context.CancelFunc
	done   chan struct{}
}

func startLeaseNode(t *testing.T, env *testenv.Env, name string, port int, nodes []announce.L2Node, svcs []*announce.L2Service) *leaseNode {
	t.Helper()
	rest, err := lease.NewREST(env.Config, leaseNS)
	if err != nil {
		t.Fatal(err)
	}
	n := &leaseNode{name: name, api: &cuttable{Leases: rest}, resp: newTimeline(), status: newWatchedStatus()}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil)).With("member", name)
	var self netip.Addr
	for _, x := range nodes {
		if x.Name == name {
			self = x.Addrs[0]
		}
	}
	var rt *Runtime
	hb, err := heartbeat.New(heartbeat.Config{Node: name, Port: port, Interval: 100 * time.Millisecond, Listen: self,
		Echoed:    func(node string, sent time.Time) { rt.Echoed(node, sent) },
		PeerState: func(node string, ok bool, at time.Time) { rt.PeerState(node, ok, at) }}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err = New(Options{Node: name, Liveness: cfg, Responder: n.resp, Heartbeat: hb, Status: n.status, Logger: log,
		Lease:      &LeaseOptions{Leases: n.api, Namespace: leaseNS, Period: leasePeriod, Liveness: leaseCfg},
		Interfaces: func() ([]Link, error) { return []Link{{Name: "eth0", Flags: 0x13, MAC: []byte{2, 0, 0, 0, 0, 1}}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	n.rt = rt
	n.cancel, n.done = runRuntime(t, name, rt, nodes, svcs, nil)
	t.Cleanup(func() { n.cancel(); <-n.done })
	return n
}

// waitStatus waits until n reports exactly keys, and returns when.
func (n *leaseNode) waitStatus(t *testing.T, keys []string, timeout time.Duration) time.Time {
	t.Helper()
	(&node{name: n.name, status: n.status}).waitStatus(t, keys, timeout)
	return time.Now()
}

// Two speakers, a and b, both reaching the apiserver and each other. a is
// cut off from the apiserver (its Lease writes and reads fail; its
// heartbeats still flow): it stops answering, because b's heartbeats say
// b's renewals work, before b takes its IPs, which b does once a's Lease has
// been silent for the Lease Threshold; at no moment do both answer one IP.
// With the apiserver back for a, a takes its IPs back, again without a
// moment of both answering.
func TestCutOffApiserverFences(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{Namespaces: []string{leaseNS}})
	port := freeUDPPort(t)
	nodes := []announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}},
		{Name: "b", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.3")}}}
	var svcs []*announce.L2Service
	for i := range 10 {
		svcs = append(svcs, &announce.L2Service{Key: fmt.Sprintf("ns/s%d", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})},
			Nodes: []string{"a", "b"}, Interfaces: []string{"eth0"}})
	}
	a := startLeaseNode(t, env, "a", port, nodes, svcs)
	b := startLeaseNode(t, env, "b", port, nodes, svcs)
	owners := Compute(Inputs{Services: svcs, Alive: []string{"a", "b"}}).Owner
	share := func(n string) []string {
		var out []string
		for _, s := range svcs {
			if owners[s.Key] == n {
				out = append(out, s.Key)
			}
		}
		return out
	}
	all := make([]string, len(svcs))
	for i, s := range svcs {
		all[i] = s.Key
	}
	slices.Sort(all)
	a.waitStatus(t, share("a"), 20*time.Second)
	b.waitStatus(t, share("b"), 20*time.Second)

	cut := time.Now()
	a.api.cut.Store(true)
	fenced := a.waitStatus(t, nil, 10*time.Second)
	took := b.waitStatus(t, all, 10*time.Second)
	t.Logf("a cut off: a stopped answering %v after the cut, b answered all %v after it",
		fenced.Sub(cut).Round(time.Millisecond), took.Sub(cut).Round(time.Millisecond))
	if fenced.Sub(cut) > leaseCfg.Threshold-leaseCfg.Margin+leasePeriod+300*time.Millisecond {
		t.Errorf("a answered %v into the cut, beyond its Lease deadline", fenced.Sub(cut))
	}

	a.api.cut.Store(false)
	a.waitStatus(t, share("a"), 20*time.Second)
	b.waitStatus(t, share("b"), 20*time.Second)
	for _, s := range svcs {
		ip := s.IPs[0]
		if at, ok := overlap(a.resp.get(ip), b.resp.get(ip)); ok {
			t.Errorf("%s (%v) answered by both a and b at %v (the cut at %v)", s.Key, ip, at.Sub(cut), cut.Format("15:04:05.000"))
		}
	}
}

// A speaker with no Service in layer 2 mode neither renews nor watches
// Leases (a cluster that uses BGP only costs the apiserver nothing); its
// Lease appears with the first such Service.
func TestLeasesOnlyWithL2Services(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{Namespaces: []string{leaseNS}})
	nodes := []announce.L2Node{{Name: "a", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}}
	a := startLeaseNode(t, env, "a", freeUDPPort(t), nodes, nil)
	// The informer's List came within milliseconds of the start when the
	// Leases started with the runtime.
	time.Sleep(500 * time.Millisecond)
	if n := a.api.lists.Load(); n != 0 {
		t.Fatalf("the Leases were listed %d times without a layer 2 Service", n)
	}
	a.rt.ApplyL2("ns/web", &announce.L2Service{Key: "ns/web", IPs: []netip.Addr{netip.MustParseAddr("192.0.2.10")},
		Nodes: []string{"a"}, Interfaces: []string{"eth0"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.api.Get(context.Background(), lease.NamePrefix+"a", metav1.GetOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Lease for a after its first layer 2 Service: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
