package mode

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/speaker/announce"
	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
	"github.com/ecmplb/ecmplb/speaker/l2/responder"
)

// watchedStatus is a StatusSink whose changes can be waited for.
type watchedStatus struct {
	mu      sync.Mutex
	now     map[string][]string
	changed chan struct{}
}

func newWatchedStatus() *watchedStatus {
	return &watchedStatus{now: map[string][]string{}, changed: make(chan struct{}, 1)}
}

func (s *watchedStatus) SetL2(key string, ifs []string, announced bool) {
	s.mu.Lock()
	if announced {
		s.now[key] = ifs
	} else {
		delete(s.now, key)
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *watchedStatus) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.now {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// node is one speaker's layer 2 mode running in its namespace.
type node struct {
	name, ns string
	mac      net.HardwareAddr
	status   *watchedStatus
	rt       *Runtime
	cancel   context.CancelFunc
	done     chan struct{}
}

func enterNS(ns string) func(func() error) error {
	return func(f func() error) error { return netns.Do(ns, f) }
}

func startNode(t *testing.T, name, ns string, nodes []announce.L2Node, svcs []*announce.L2Service) *node {
	t.Helper()
	n := &node{name: name, ns: ns, status: newWatchedStatus()}
	err := netns.Do(ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			n.mac = ifi.HardwareAddr
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var rt *Runtime
	resp := responder.New(responder.Options{Logger: log, Enter: enterNS(ns), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		AnnounceInterval: 200 * time.Millisecond, Gate: func() bool { return rt.Gate() }})
	hb, err := heartbeat.New(heartbeat.Config{Node: name, Interval: 100 * time.Millisecond, Enter: enterNS(ns),
		Echoed: func(node string, sent time.Time) { rt.Echoed(node, sent) }}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, err = New(Options{Node: name, Liveness: cfg, Responder: resp, Heartbeat: hb, Status: n.status, Logger: log,
		Interfaces: func() (links []Link, err error) {
			err = netns.Do(ns, func() error { links, err = HostInterfaces(); return err })
			return links, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	n.rt = rt
	n.cancel, n.done = runRuntime(t, name, rt, nodes, svcs, func() { _ = resp.Close() })
	return n
}

// runRuntime feeds rt the nodes and Services and runs it until cancel; done
// is closed once Run has returned and after (if not nil) has run.
func runRuntime(t *testing.T, name string, rt *Runtime, nodes []announce.L2Node, svcs []*announce.L2Service, after func()) (cancel context.CancelFunc, done chan struct{}) {
	rt.SetL2Nodes(nodes)
	for _, s := range svcs {
		rt.ApplyL2(s.Key, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
		if after != nil {
			after()
		}
	}()
	return cancel, done
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

// waitStatus waits until n reports exactly keys as announced.
func (n *node) waitStatus(t *testing.T, keys []string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !slices.Equal(n.status.keys(), keys) {
		select {
		case <-n.status.changed:
		case <-deadline.C:
			t.Fatalf("%s announces %v, want %v", n.name, n.status.keys(), keys)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Three speakers on one Ethernet segment with a client. Each answers ARP
// for the Services it is chosen for, as the client's neighbour table shows
// (and exactly one announces each Service); a speaker stopped, its IPs move
// to the node the others choose, announced to the client within the
// heartbeat threshold of the stop; restarted, it takes them back after
// Rejoin; a speaker cut off the segment loses its IPs the same way and gets
// them back once its link returns. Every goroutine ends with the speakers.
func TestNamespaceFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("uses network namespaces")
	}
	before := runtime.NumGoroutine()
	lab := netnstest.RootLab(t)
	names := []string{"a", "b", "c"}
	seg, err := lab.Segment("hub", []string{"a", "b", "c", "cl"},
		[][]string{{"192.0.2.1/24"}, {"192.0.2.2/24"}, {"192.0.2.3/24"}, {"192.0.2.100/24"}})
	if err != nil {
		t.Fatal(err)
	}
	client := seg.Hosts[3]
	var l2nodes []announce.L2Node
	for i, n := range names {
		l2nodes = append(l2nodes, announce.L2Node{Name: n, Addrs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})}})
	}
	var svcs []*announce.L2Service
	for i := range 9 {
		s := &announce.L2Service{Key: fmt.Sprintf("ns/s%d", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(200 + i)})}, Nodes: names}
		if i%2 == 0 {
			s.AllInterfaces = true // eth0: lo is not eligible
		} else {
			s.Interfaces = []string{"eth0"}
		}
		svcs = append(svcs, s)
	}

	nodes := map[string]*node{}
	for i, n := range names {
		nodes[n] = startNode(t, n, seg.Hosts[i], l2nodes, svcs)
	}
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	watch, err := netns.WatchNeighbors(client, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()

	// check waits until each node announces exactly the Services Compute
	// gives it over alive, and the client resolves every IP to its owner.
	check := func(what string, alive []string, timeout time.Duration) map[string]string {
		t.Helper()
		owners := Compute(Inputs{Services: svcs, Alive: alive}).Owner
		for _, n := range alive {
			var mine []string
			for _, s := range svcs {
				if owners[s.Key] == n {
					mine = append(mine, s.Key)
				}
			}
			nodes[n].waitStatus(t, mine, timeout)
		}
		for _, s := range svcs {
			ip, owner := s.IPs[0], nodes[owners[s.Key]]
			if e, ok := watch.Latest(ip); ok && e.Resolved() && slices.Equal(e.MAC, owner.mac) {
				continue
			}
			if err := netns.DeleteNeighbor(client, "eth0", ip); err != nil {
				t.Fatal(err)
			}
			sendUDP(t, client, ip)
			if err := watch.WaitFor(2*time.Second, resolvedTo(ip, owner.mac)); err != nil {
				t.Fatalf("%s: %s (%v) not resolved to %s: %v", what, s.Key, ip, owner.name, err)
			}
		}
		t.Logf("%s: owners %v", what, owners)
		return owners
	}
	owners := check("all three up", names, 10*time.Second)

	// Stop the owner of s0: its IPs move within the threshold.
	victim := owners["ns/s0"]
	rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == victim })
	after := Compute(Inputs{Services: svcs, Alive: rest}).Owner
	stopped := time.Now()
	nodes[victim].stop()
	for _, s := range svcs {
		if owners[s.Key] != victim {
			continue
		}
		heir := nodes[after[s.Key]]
		if err := watch.WaitFor(3*time.Second, movedTo(s.IPs[0], heir.mac, stopped)); err != nil {
			t.Fatalf("%s stopped: %s not moved to %s: %v", victim, s.Key, heir.name, err)
		}
		at := firstMove(watch, s.IPs[0], heir.mac, stopped)
		took := at.Sub(stopped)
		t.Logf("%s stopped: the client sent %s to %s %v later", victim, s.IPs[0], heir.name, took.Round(time.Millisecond))
		if took > cfg.Threshold+600*time.Millisecond {
			t.Errorf("%s moved %v after the stop, want within Threshold %v (+ delivery and scheduling)", s.IPs[0], took, cfg.Threshold)
		}
	}
	check(victim+" stopped", rest, 5*time.Second)

	// Restarted, it takes its own back.
	i := slices.Index(names, victim)
	nodes[victim] = startNode(t, victim, seg.Hosts[i], l2nodes, svcs)
	check(victim+" restarted", names, 10*time.Second)

	// Cut one node off the segment (its cable pulled): its IPs move too.
	cut := owners["ns/s1"]
	ci := slices.Index(names, cut)
	rest = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == cut })
	after = Compute(Inputs{Services: svcs, Alive: rest}).Owner
	cutAt := time.Now()
	if err := netns.SetLinkUp(seg.Hub, seg.Ports[ci], false); err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		if owners[s.Key] != cut {
			continue
		}
		heir := nodes[after[s.Key]]
		if err := watch.WaitFor(3*time.Second, movedTo(s.IPs[0], heir.mac, cutAt)); err != nil {
			t.Fatalf("%s cut off: %s not moved to %s: %v", cut, s.Key, heir.name, err)
		}
		t.Logf("%s cut off: the client sent %s to %s %v later", cut, s.IPs[0], heir.name,
			firstMove(watch, s.IPs[0], heir.mac, cutAt).Sub(cutAt).Round(time.Millisecond))
	}
	for _, n := range rest {
		var mine []string
		for _, s := range svcs {
			if after[s.Key] == n {
				mine = append(mine, s.Key)
			}
		}
		nodes[n].waitStatus(t, mine, 5*time.Second)
	}
	if err := netns.SetLinkUp(seg.Hub, seg.Ports[ci], true); err != nil {
		t.Fatal(err)
	}
	check(cut+" back on the segment", names, 10*time.Second)

	for _, n := range nodes {
		n.stop()
	}
	watch.Close()
	if err := lab.Close(); err != nil {
		t.Error(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after every speaker stopped, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func resolvedTo(ip netip.Addr, mac net.HardwareAddr) func([]netns.NeighEvent) bool {
	return func(evs []netns.NeighEvent) bool {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].IP == ip {
				return !evs[i].Delete && evs[i].Resolved() && slices.Equal(evs[i].MAC, mac)
			}
		}
		return false
	}
}

// movedTo holds once the client's entry for ip carries mac, changed after since.
func movedTo(ip netip.Addr, mac net.HardwareAddr, since time.Time) func([]netns.NeighEvent) bool {
	return func(evs []netns.NeighEvent) bool {
		for i := len(evs) - 1; i >= 0 && !evs[i].At.Before(since); i-- {
			if evs[i].IP == ip && !evs[i].Delete && slices.Equal(evs[i].MAC, mac) {
				return true
			}
		}
		return false
	}
}

func firstMove(w *netns.NeighWatch, ip netip.Addr, mac net.HardwareAddr, since time.Time) time.Time {
	for _, e := range w.Since(since) {
		if e.IP == ip && !e.Delete && slices.Equal(e.MAC, mac) {
			return e.At
		}
	}
	return time.Time{}
}

// sendUDP sends one datagram from namespace ns to ip, which makes the
// kernel resolve ip.
func sendUDP(t *testing.T, ns string, ip netip.Addr) {
	t.Helper()
	if err := netns.Probe(ns, ip); err != nil {
		t.Fatal(err)
	}
}
