package allocator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"k8s.io/apimachinery/pkg/labels"
)

func poolCfg(name string, addrs ...string) PoolConfig {
	return PoolConfig{Name: name, Addresses: addrs, AutoAssign: true}
}

func svc(key string, opts ...func(*Request)) Request {
	ns, _, _ := strings.Cut(key, "/")
	r := Request{Key: key, Namespace: ns, Ports: []Port{{"TCP", 80}}}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func wantIP(ips ...string) func(*Request) {
	return func(r *Request) {
		for _, s := range ips {
			r.IPs = append(r.IPs, netip.MustParseAddr(s))
		}
	}
}
func inPool(p string) func(*Request)   { return func(r *Request) { r.Pool = p } }
func shareKey(k string) func(*Request) { return func(r *Request) { r.SharingKey = k } }
func ports(ps ...int32) func(*Request) {
	return func(r *Request) {
		r.Ports = nil
		for _, p := range ps {
			r.Ports = append(r.Ports, Port{"TCP", p})
		}
	}
}
func local(sel map[string]string) func(*Request) {
	return func(r *Request) { r.Local, r.Selector = true, sel }
}
func family(pol FamilyPolicy, fams ...Family) func(*Request) {
	return func(r *Request) { r.Policy, r.Families = pol, fams }
}
func svcLabels(l map[string]string) func(*Request) { return func(r *Request) { r.Labels = l } }
func nsLabels(l map[string]string) func(*Request)  { return func(r *Request) { r.NamespaceLabels = l } }

// step is one operation and what it must yield.
type step struct {
	op      string // assign, restore, release, pool, delpool
	req     Request
	pool    PoolConfig
	restore []string
	want    []string // IPs of the result (assign, restore)
	err     Reason   // expected failure reason (assign, restore)
	cfgErr  string   // expected pool error substring
	changed *bool
}

func assign(r Request, want ...string) step { return step{op: "assign", req: r, want: want} }
func assignFails(r Request, reason Reason, keep ...string) step {
	return step{op: "assign", req: r, err: reason, want: keep}
}
func release(key string) step { return step{op: "release", req: Request{Key: key}} }

func ipsText(ips []netip.Addr) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func run(t *testing.T, a *Allocator, steps []step) {
	t.Helper()
	for i, s := range steps {
		switch s.op {
		case "pool":
			_, err := a.SetPool(s.pool)
			if s.cfgErr == "" && err != nil {
				t.Fatalf("step %d: SetPool(%s): %v", i, s.pool.Name, err)
			}
			if s.cfgErr != "" && (err == nil || !strings.Contains(err.Error(), s.cfgErr)) {
				t.Fatalf("step %d: SetPool(%s) error = %v, want %q", i, s.pool.Name, err, s.cfgErr)
			}
		case "delpool":
			a.DeletePool(s.pool.Name)
		case "release":
			a.Release(s.req.Key)
		case "assign", "restore":
			var as Assignment
			var err error
			var changed bool
			if s.op == "assign" {
				as, changed, err = a.Assign(s.req)
			} else {
				var ips []netip.Addr
				for _, r := range s.restore {
					ips = append(ips, netip.MustParseAddr(r))
				}
				as, err = a.Restore(s.req, ips)
			}
			var ae *Error
			switch {
			case s.err == "" && err != nil:
				t.Fatalf("step %d: %s %s: %v", i, s.op, s.req.Key, err)
			case s.err != "" && (!errors.As(err, &ae) || ae.Reason != s.err):
				t.Fatalf("step %d: %s %s error = %v, want reason %s", i, s.op, s.req.Key, err, s.err)
			}
			if got := ipsText(as.IPs); !slices.Equal(got, s.want) {
				t.Fatalf("step %d: %s %s = %v, want %v (err %v)", i, s.op, s.req.Key, got, s.want, err)
			}
			if s.changed != nil && changed != *s.changed {
				t.Fatalf("step %d: changed = %v, want %v", i, changed, *s.changed)
			}
		default:
			t.Fatalf("bad op %q", s.op)
		}
		checkInvariants(t, a)
	}
}

// checkInvariants verifies that no IP is both free and held, that every
// held IP's holders agree with the Service index, and that counters add up.
func checkInvariants(t *testing.T, a *Allocator) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	held := map[netip.Addr][]string{}
	for key, ips := range a.svcs {
		for _, ip := range ips {
			held[ip] = append(held[ip], key)
		}
	}
	if len(held) != len(a.ips) {
		t.Fatalf("invariant: %d IPs in services, %d entries", len(held), len(a.ips))
	}
	used := map[*pool][2]int64{}
	out := 0
	for ip, e := range a.ips {
		if e.pool == nil {
			out++
		}
		if len(e.holders) != len(held[ip]) {
			t.Fatalf("invariant: %s holders %v vs services %v", ip, e.holders, held[ip])
		}
		if len(e.holders) > 1 && e.key == "" {
			t.Fatalf("invariant: %s shared without a key", ip)
		}
		for _, p := range a.pools {
			if p.free[FamilyOf(ip)].has(ip) {
				t.Fatalf("invariant: %s is held and free in %s", ip, p.cfg.Name)
			}
			if p.contains(ip) && e.pool != p {
				t.Fatalf("invariant: %s lies in %s but is filed under another pool", ip, p.cfg.Name)
			}
		}
		if e.pool != nil {
			u := used[e.pool]
			u[FamilyOf(ip)]++
			used[e.pool] = u
		}
	}
	if out != a.nOut {
		t.Fatalf("invariant: %d IPs outside pools, counted %d", out, a.nOut)
	}
	for _, p := range a.pools {
		if used[p] != p.used {
			t.Fatalf("invariant: pool %s used %v, counted %v", p.cfg.Name, p.used, used[p])
		}
	}
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

func TestAllocator(t *testing.T) {
	sel := func(s string) labels.Selector { x, _ := labels.Parse(s); return x }
	tests := []struct {
		name  string
		pools []PoolConfig
		steps []step
	}{
		{
			name:  "lowest free first, release and reuse",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				assign(svc("a/s2"), "10.0.0.1"),
				assign(svc("a/s3"), "10.0.0.2"),
				release("a/s2"),
				assign(svc("a/s4"), "10.0.0.1"),
				assign(svc("a/s1"), "10.0.0.0"), // idempotent
			},
		},
		{
			name:  "exhaustion keeps failing until an IP is freed",
			pools: []PoolConfig{poolCfg("p", "10.0.0.1-10.0.0.2")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.1"),
				assign(svc("a/s2"), "10.0.0.2"),
				assignFails(svc("a/s3"), ReasonExhausted),
				assignFails(svc("a/s3"), ReasonExhausted),
				release("a/s1"),
				assign(svc("a/s3"), "10.0.0.1"),
			},
		},
		{
			name:  "avoidBuggyIPs skips .0 and .255",
			pools: []PoolConfig{{Name: "p", Addresses: []string{"10.0.0.254-10.0.1.1"}, AutoAssign: true, AvoidBuggyIPs: true}},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.254"),
				assign(svc("a/s2"), "10.0.1.1"),
				assignFails(svc("a/s3"), ReasonExhausted),
				assignFails(svc("a/s4", wantIP("10.0.1.0")), ReasonInvalidRequest),
			},
		},
		{
			name:  "without avoidBuggyIPs .0 is used",
			pools: []PoolConfig{poolCfg("p", "10.0.1.0/24")},
			steps: []step{assign(svc("a/s1"), "10.0.1.0")},
		},
		{
			name: "autoAssign false is used only on request",
			pools: []PoolConfig{
				{Name: "expensive", Addresses: []string{"192.0.2.0/30"}},
				poolCfg("cheap", "10.0.0.0/30"),
			},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				assign(svc("a/s2", inPool("expensive")), "192.0.2.0"),
				assign(svc("a/s3", wantIP("192.0.2.3")), "192.0.2.3"),
				assignFails(svc("a/s4", inPool("nope")), ReasonPoolNotFound),
			},
		},
		{
			name: "priorities: lower first, pools with serviceAllocation before those without",
			pools: []PoolConfig{
				poolCfg("aa-any", "10.0.0.0/30"),
				{Name: "zz-prio5", Addresses: []string{"10.0.5.0/31"}, AutoAssign: true, AllocateTo: &Selection{Priority: 5, Namespaces: []string{"team"}}},
				{Name: "mm-prio1", Addresses: []string{"10.0.1.0/32"}, AutoAssign: true, AllocateTo: &Selection{Priority: 1, Namespaces: []string{"team"}}},
				{Name: "bb-noprio", Addresses: []string{"10.0.9.0/32"}, AutoAssign: true, AllocateTo: &Selection{Namespaces: []string{"team"}}},
			},
			steps: []step{
				assign(svc("team/s1"), "10.0.1.0"),
				assign(svc("team/s2"), "10.0.5.0"),
				assign(svc("team/s3"), "10.0.5.1"),
				assign(svc("team/s4"), "10.0.9.0"),
				assign(svc("team/s5"), "10.0.0.0"),
				assign(svc("other/s1"), "10.0.0.1"),
			},
		},
		{
			name: "namespace and service selectors",
			pools: []PoolConfig{
				{Name: "prod", Addresses: []string{"10.1.0.0/30"}, AutoAssign: true, AllocateTo: &Selection{
					NamespaceSelectors: []labels.Selector{sel("env=prod")},
					ServiceSelectors:   []labels.Selector{sel("tier=web")},
				}},
				{Name: "only-ns", Addresses: []string{"10.2.0.0/30"}, AutoAssign: true, AllocateTo: &Selection{Namespaces: []string{"x"}}},
			},
			steps: []step{
				assign(svc("shop/web", nsLabels(map[string]string{"env": "prod"}), svcLabels(map[string]string{"tier": "web"})), "10.1.0.0"),
				assignFails(svc("shop/db", nsLabels(map[string]string{"env": "prod"}), svcLabels(map[string]string{"tier": "db"})), ReasonNoMatchingPool),
				assignFails(svc("dev/web", nsLabels(map[string]string{"env": "dev"}), svcLabels(map[string]string{"tier": "web"})), ReasonNoMatchingPool),
				assign(svc("x/any"), "10.2.0.0"),
			},
		},
		{
			name:  "requested IP: granted, in use, outside every pool, wrong pool",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/29"), poolCfg("q", "10.0.1.0/29")},
			steps: []step{
				assign(svc("a/s1", wantIP("10.0.0.5")), "10.0.0.5"),
				assign(svc("a/s2"), "10.0.0.0"),
				assignFails(svc("a/s3", wantIP("10.0.0.5")), ReasonIPInUse),
				assignFails(svc("a/s3", wantIP("192.0.2.1")), ReasonNotInPool),
				assignFails(svc("a/s3", wantIP("10.0.0.6"), inPool("q")), ReasonNotInPool),
				assignFails(svc("a/s3", wantIP("10.0.0.6", "10.0.0.7")), ReasonInvalidRequest),
				assign(svc("a/s3", wantIP("10.0.1.6"), inPool("q")), "10.0.1.6"),
				// changing the request moves the Service; the old IP is freed
				assign(svc("a/s1", wantIP("10.0.0.6")), "10.0.0.6"),
				assign(svc("a/s4", wantIP("10.0.0.5")), "10.0.0.5"),
			},
		},
		{
			name:  "failed change keeps the old allocation",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				assign(svc("a/s2"), "10.0.0.1"),
				assignFails(svc("a/s1", wantIP("10.0.0.1")), ReasonIPInUse, "10.0.0.0"),
				assignFails(svc("a/s1", inPool("gone")), ReasonPoolNotFound, "10.0.0.0"),
			},
		},
		{
			name:  "sharing: same key and disjoint ports share",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/dns-tcp", shareKey("dns"), ports(53)), "10.0.0.0"),
				assign(svc("a/dns-udp", shareKey("dns"), func(r *Request) { r.Ports = []Port{{"UDP", 53}} }), "10.0.0.0"),
				assign(svc("a/web", shareKey("dns"), ports(80)), "10.0.0.0"),
				// port collision with a holder: gets its own IP
				assign(svc("a/web2", shareKey("dns"), ports(80)), "10.0.0.1"),
				// other key: own IP
				assign(svc("a/other", shareKey("x"), ports(81)), "10.0.0.2"),
				// requesting a shared IP with a different key fails
				assignFails(svc("a/z", shareKey("y"), ports(99), wantIP("10.0.0.0")), ReasonIPInUse),
				assign(svc("a/z", shareKey("dns"), ports(99), wantIP("10.0.0.0")), "10.0.0.0"),
				release("a/dns-tcp"), release("a/dns-udp"), release("a/web"),
				// still held by a/z
				assign(svc("a/n"), "10.0.0.3"),
				release("a/z"),
				assign(svc("a/m"), "10.0.0.0"),
			},
		},
		{
			name:  "sharing with Local policy needs identical selectors",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1", shareKey("k"), ports(80), local(map[string]string{"app": "x"})), "10.0.0.0"),
				assign(svc("a/s2", shareKey("k"), ports(81), local(map[string]string{"app": "y"})), "10.0.0.1"),
				assign(svc("a/s3", shareKey("k"), ports(82), local(map[string]string{"app": "x"})), "10.0.0.0"),
				// Cluster Service with another selector cannot join a Local one
				assign(svc("a/s4", shareKey("k"), ports(83), func(r *Request) { r.Selector = map[string]string{"app": "z"} }), "10.0.0.2"),
				// two Cluster Services with different selectors may share
				assign(svc("a/s5", shareKey("k"), ports(84), func(r *Request) { r.Selector = map[string]string{"app": "w"} }), "10.0.0.2"),
			},
		},
		{
			name:  "sharing: a holder whose ports start colliding moves",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1", shareKey("k"), ports(80)), "10.0.0.0"),
				assign(svc("a/s2", shareKey("k"), ports(81)), "10.0.0.0"),
				assign(svc("a/s2", shareKey("k"), ports(80)), "10.0.0.1"),
				assign(svc("a/s1", shareKey("other"), ports(80)), "10.0.0.0"), // alone: keeps its IP
			},
		},
		{
			name:  "dual-stack",
			pools: []PoolConfig{poolCfg("v4only", "10.0.0.0/31"), poolCfg("dual", "10.9.0.0/31", "2001:db8::/64"), poolCfg("v6only", "2001:db8:1::/126")},
			steps: []step{
				assign(svc("a/req", family(RequireDualStack, IPv4, IPv6)), "10.9.0.0", "2001:db8::"),
				assign(svc("a/req6first", family(RequireDualStack, IPv6, IPv4)), "2001:db8::1", "10.9.0.1"),
				assignFails(svc("a/req3", family(RequireDualStack, IPv4, IPv6)), ReasonExhausted),
				assign(svc("a/pref", family(PreferDualStack, IPv4, IPv6)), "10.0.0.0"),
				assign(svc("a/v6", family(SingleStack, IPv6)), "2001:db8::2"),
				assign(svc("a/v4", family(SingleStack, IPv4)), "10.0.0.1"),
				assignFails(svc("a/v4b", family(SingleStack, IPv4)), ReasonExhausted),
				assign(svc("a/v6-pool", family(SingleStack, IPv6), inPool("v6only")), "2001:db8:1::"),
				assignFails(svc("a/v4-in-v6", family(SingleStack, IPv4), inPool("v6only")), ReasonNoMatchingPool),
				// requested pair
				release("a/req"),
				assign(svc("a/pair", family(RequireDualStack, IPv4, IPv6), wantIP("10.9.0.0", "2001:db8::ff")), "10.9.0.0", "2001:db8::ff"),
				assignFails(svc("a/one", family(RequireDualStack, IPv4, IPv6), wantIP("2001:db8::fe")), ReasonInvalidRequest),
				// going single-stack keeps the primary IP and frees the other
				assign(svc("a/pair", family(SingleStack, IPv4)), "10.9.0.0"),
				assign(svc("a/v6x", family(SingleStack, IPv6)), "2001:db8::"),
			},
		},
		{
			name:  "dual-stack upgrade keeps the existing IP",
			pools: []PoolConfig{poolCfg("dual", "10.9.0.0/30", "2001:db8::/120")},
			steps: []step{
				assign(svc("a/s", family(SingleStack, IPv4)), "10.9.0.0"),
				assign(svc("a/t", family(SingleStack, IPv4)), "10.9.0.1"),
				assign(svc("a/s", family(RequireDualStack, IPv4, IPv6)), "10.9.0.0", "2001:db8::"),
			},
		},
		{
			name:  "restart: restored allocations are kept and never handed out again",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/29")},
			steps: []step{
				{op: "restore", req: svc("a/s1"), restore: []string{"10.0.0.3"}, want: []string{"10.0.0.3"}},
				{op: "restore", req: svc("a/s2"), restore: []string{"10.0.0.0"}, want: []string{"10.0.0.0"}},
				{op: "restore", req: svc("a/gone-pool"), restore: []string{"192.0.2.9"}, want: []string{"192.0.2.9"}},
				// duplicate in status: the second claimant is refused
				{op: "restore", req: svc("a/dup"), restore: []string{"10.0.0.3"}, err: ReasonIPInUse},
				{op: "assign", req: svc("a/s1"), want: []string{"10.0.0.3"}, changed: no},
				{op: "assign", req: svc("a/gone-pool"), want: []string{"192.0.2.9"}, changed: no},
				{op: "assign", req: svc("a/dup"), want: []string{"10.0.0.1"}, changed: yes},
				assign(svc("a/new"), "10.0.0.2"),
				assign(svc("a/new2"), "10.0.0.4"),
			},
		},
		{
			name:  "restart with sharing",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				{op: "restore", req: svc("a/s1", shareKey("k"), ports(80)), restore: []string{"10.0.0.1"}, want: []string{"10.0.0.1"}},
				{op: "restore", req: svc("a/s2", shareKey("k"), ports(81)), restore: []string{"10.0.0.1"}, want: []string{"10.0.0.1"}},
				{op: "restore", req: svc("a/s3", shareKey("k"), ports(81)), restore: []string{"10.0.0.1"}, err: ReasonIPInUse},
				assign(svc("a/s3", shareKey("k"), ports(81)), "10.0.0.0"),
				assign(svc("a/s4", shareKey("k"), ports(82)), "10.0.0.0"),
			},
		},
		{
			name:  "pool shrinks: allocations outside are kept, not reassigned",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/29")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				assign(svc("a/s2"), "10.0.0.1"),
				{op: "pool", pool: poolCfg("p", "10.0.0.1-10.0.0.2")},
				{op: "assign", req: svc("a/s1"), want: []string{"10.0.0.0"}, changed: no},
				assign(svc("a/s3"), "10.0.0.2"),
				assignFails(svc("a/s4"), ReasonExhausted),
				// released out-of-pool IP is not handed out
				release("a/s1"),
				assignFails(svc("a/s4"), ReasonExhausted),
				// grown again: the gap is free
				{op: "pool", pool: poolCfg("p", "10.0.0.0/29")},
				assign(svc("a/s4"), "10.0.0.0"),
			},
		},
		{
			name:  "pool deleted and re-created: allocation kept then adopted",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				{op: "delpool", pool: PoolConfig{Name: "p"}},
				{op: "assign", req: svc("a/s1"), want: []string{"10.0.0.0"}, changed: no},
				assignFails(svc("a/s2"), ReasonNoMatchingPool),
				{op: "pool", pool: poolCfg("p2", "10.0.0.0/30")},
				assign(svc("a/s2"), "10.0.0.1"),
				{op: "assign", req: svc("a/s1"), want: []string{"10.0.0.0"}, changed: no},
			},
		},
		{
			name:  "bad pool config: rejected with field, old config kept",
			pools: []PoolConfig{poolCfg("p", "10.0.0.0/30")},
			steps: []step{
				assign(svc("a/s1"), "10.0.0.0"),
				{op: "pool", pool: poolCfg("p", "10.0.1.0/24", "10.0.0.0/33"), cfgErr: `spec.addresses[1]: "10.0.0.0/33" is not a valid CIDR or range`},
				{op: "pool", pool: poolCfg("q", "10.0.0.2-10.0.0.9"), cfgErr: `spec.addresses[0]: "10.0.0.2-10.0.0.9" overlaps IPAddressPool "p" (10.0.0.0-10.0.0.3)`},
				assign(svc("a/s2"), "10.0.0.1"),
				assignFails(svc("a/s3", inPool("q")), ReasonPoolNotFound),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New()
			for _, p := range tt.pools {
				if _, err := a.SetPool(p); err != nil {
					t.Fatal(err)
				}
			}
			run(t, a, tt.steps)
		})
	}
}

func TestPoolChangeAndStats(t *testing.T) {
	a := New()
	if _, err := a.SetPool(poolCfg("p", "10.0.0.0/29", "2001:db8::/64")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, _, err := a.Assign(svc(fmt.Sprintf("a/s%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Assign(svc("a/v6", family(SingleStack, IPv6))); err != nil {
		t.Fatal(err)
	}
	st, _ := a.Stats("p")
	want := Stats{Total: [2]int64{8, 1<<63 - 1}, Assigned: [2]int64{3, 1}, Available: [2]int64{5, 1<<63 - 1}}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	ch, err := a.SetPool(poolCfg("p", "10.0.0.2/31"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Orphaned) != 3 || ch.Orphaned[0].IP.String() != "10.0.0.0" || ch.Orphaned[0].Services[0] != "a/s0" {
		t.Fatalf("Orphaned = %+v", ch.Orphaned)
	}
	st, _ = a.Stats("p")
	if st.Outside != 3 || st.Assigned != [2]int64{1, 0} || st.Available != [2]int64{1, 0} {
		t.Fatalf("Stats after shrink = %+v", st)
	}
	as, _ := a.Lookup("a/s0")
	if len(as.OutOfPool) != 1 || as.Pool != "" {
		t.Fatalf("Lookup of orphan = %+v", as)
	}
	ch, _ = a.SetPool(poolCfg("p", "10.0.0.0/29"))
	if len(ch.Adopted) != 2 { // 10.0.0.0, 10.0.0.1 (v6 left outside)
		t.Fatalf("Adopted = %+v", ch.Adopted)
	}
	ch = a.DeletePool("p")
	if len(ch.Orphaned) != 3 {
		t.Fatalf("DeletePool orphaned = %+v", ch.Orphaned)
	}
	checkInvariants(t, a)
}

func TestSetPools(t *testing.T) {
	a := New()
	if _, err := a.SetPools([]PoolConfig{poolCfg("a", "10.0.0.0/30"), poolCfg("b", "10.0.1.0/30")}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Request{svc("x/a", inPool("a")), svc("x/b", inPool("b"))} {
		if _, _, err := a.Assign(r); err != nil {
			t.Fatal(err)
		}
	}
	// The pools swap their addresses in one step: with SetPool one at a time
	// the first change would overlap the other pool's old addresses.
	ch, err := a.SetPools([]PoolConfig{poolCfg("a", "10.0.1.0/30"), poolCfg("b", "10.0.0.0/30")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch["a"].Adopted) != 1 || ch["a"].Adopted[0].Services[0] != "x/b" || len(ch["b"].Adopted) != 1 || len(ch["a"].Orphaned)+len(ch["b"].Orphaned) != 0 {
		t.Fatalf("changes = %+v", ch)
	}
	if as, _ := a.Lookup("x/a"); as.Pool != "b" || as.IPs[0].String() != "10.0.0.0" {
		t.Fatalf("x/a = %+v; its IP must stay and now be in b", as)
	}
	// Unchanged pools are left alone; listing nothing removes everything and
	// keeps the allocations.
	if ch, err := a.SetPools([]PoolConfig{poolCfg("a", "10.0.1.0/30"), poolCfg("b", "10.0.0.0/30")}); err != nil || len(ch) != 0 {
		t.Fatalf("no-op SetPools = %+v, %v", ch, err)
	}
	ch, _ = a.SetPools(nil)
	if len(ch["a"].Orphaned) != 1 || len(ch["b"].Orphaned) != 1 || a.Outside() != 2 || len(a.Pools()) != 0 {
		t.Fatalf("after removing all: changes %+v, outside %d, pools %v", ch, a.Outside(), a.Pools())
	}
	// Errors change nothing.
	for _, cfgs := range [][]PoolConfig{
		{poolCfg("a", "10.0.0.0/30"), poolCfg("b", "10.0.0.2/31")},
		{poolCfg("a", "10.0.0.0/30"), poolCfg("c", "10.0.0.0/33")},
		{poolCfg("a", "10.0.0.0/30"), poolCfg("a", "10.0.9.0/30")},
	} {
		if _, err := a.SetPools(cfgs); err == nil {
			t.Errorf("SetPools(%v) accepted", cfgs)
		}
		if len(a.Pools()) != 0 || a.Outside() != 2 {
			t.Fatalf("a failed SetPools changed state: pools %v, outside %d", a.Pools(), a.Outside())
		}
	}
	checkInvariants(t, a)
}

// TestAllocatorRandomOps runs random operations and checks that no IP is
// ever held by two Services that may not share it, and that state matches
// a rebuild from the allocations (a restart).
func TestAllocatorRandomOps(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomOps(t, seed) })
	}
}

func randomOps(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	a := New()
	pools := []PoolConfig{poolCfg("p", "10.0.0.0/28"), poolCfg("q", "10.0.1.0/29", "2001:db8::/125")}
	for _, p := range pools {
		if _, err := a.SetPool(p); err != nil {
			t.Fatal(err)
		}
	}
	reqs := map[string]Request{}
	for i := range 1500 {
		key := fmt.Sprintf("ns/s%d", rng.IntN(40))
		switch rng.IntN(10) {
		case 0, 1:
			a.Release(key)
			delete(reqs, key)
		case 2:
			p := pools[rng.IntN(2)]
			if rng.IntN(2) == 0 {
				a.DeletePool(p.Name)
			} else if _, err := a.SetPool(p); err != nil {
				t.Fatal(err)
			}
		default:
			r := svc(key, ports(int32(rng.IntN(3))))
			if rng.IntN(3) == 0 {
				r.SharingKey = "k"
			}
			switch rng.IntN(4) {
			case 0:
				r.Policy, r.Families = RequireDualStack, []Family{IPv4, IPv6}
			case 1:
				r.Families = []Family{IPv6}
			}
			if rng.IntN(5) == 0 {
				r.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(16))})}
				r.Policy, r.Families = SingleStack, nil
			}
			if _, _, err := a.Assign(r); err == nil {
				reqs[key] = r
			}
		}
		checkInvariants(t, a)
		// Every IP with several holders obeys the sharing rules.
		a.mu.Lock()
		for ip, e := range a.ips {
			for _, h := range e.holders {
				r := reqs[h.svc]
				if len(e.holders) > 1 && canShare(&r, ip, e) != nil {
					t.Fatalf("op %d: %s held by %v against the sharing rules: %v; key %q holders %+v", i, ip, e.holding(ip).Services, canShare(&r, ip, e), e.key, e.holders)
				}
			}
		}
		a.mu.Unlock()
	}
	// Restart: rebuild from the allocations; nothing moves.
	b := New()
	for _, p := range a.Pools() {
		for _, cfg := range pools {
			if cfg.Name == p {
				b.SetPool(cfg)
			}
		}
	}
	for key, r := range reqs {
		as, ok := a.Lookup(key)
		if !ok {
			continue
		}
		if _, err := b.Restore(r, as.IPs); err != nil {
			t.Fatalf("restore %s %v: %v", key, as.IPs, err)
		}
	}
	for key, r := range reqs {
		before, ok := a.Lookup(key)
		if !ok {
			continue
		}
		after, changed, _ := b.Assign(r)
		if changed || !slices.Equal(before.IPs, after.IPs) {
			t.Fatalf("%s moved on restart: %v -> %v", key, before.IPs, after.IPs)
		}
	}
	checkInvariants(t, b)
}

// TestAllocationStaysFlat fills a /16 and checks the free structure never
// grows beyond a handful of intervals, so each allocation costs O(log n).
func TestAllocationStaysFlat(t *testing.T) {
	a := New()
	if _, err := a.SetPool(poolCfg("big", "10.0.0.0/16", "2001:db8::/64")); err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		r := svc(fmt.Sprintf("a/s%d", i), family(RequireDualStack, IPv4, IPv6))
		if _, _, err := a.Assign(r); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			a.Release(fmt.Sprintf("a/s%d", i/2))
		}
	}
	p := a.pools["big"]
	if n := p.free[IPv4].intervals() + p.free[IPv6].intervals(); n > 10000 {
		t.Fatalf("free sets hold %d intervals", n)
	}
	checkInvariants(t, a)
}

func BenchmarkAssign(b *testing.B) {
	a := New()
	if _, err := a.SetPool(poolCfg("big", "10.0.0.0/8")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, err := a.Assign(svc(fmt.Sprintf("a/s%d", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHolderSize: every allocated IP has a holder; one that is not shared
// is a name and a nil pointer, the sharing terms live apart.
func TestHolderSize(t *testing.T) {
	if n := unsafe.Sizeof(holder{}); n > 24 {
		t.Fatalf("holder is %d bytes", n)
	}
}
