package backend

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
)

func TestRoles(t *testing.T) {
	ref := Reference(9 * time.Second)
	if got := ref.BFDToRs("node2"); !slices.Equal(got, []string{"tor1"}) {
		t.Errorf("reference BFD ToRs %v", got)
	}
	if got := ref.PlainToRs("node2"); !slices.Equal(got, []string{"tor2"}) {
		t.Errorf("reference plain ToRs %v", got)
	}
	if ref.DetectTime("tor1", "node2") != 900*time.Millisecond || ref.DetectTime("tor2", "node2") != 0 {
		t.Errorf("detect times %v %v", ref.DetectTime("tor1", "node2"), ref.DetectTime("tor2", "node2"))
	}
	if ref.HoldTime() != 9*time.Second || ref.KeepaliveInterval() != 3*time.Second {
		t.Errorf("timers %v %v", ref.HoldTime(), ref.KeepaliveInterval())
	}
	if err := ref.Validate(); err != nil {
		t.Error(err)
	}
	all := BFDEverywhere(90 * time.Second)
	if got := all.BFDToRs("node1"); !slices.Equal(got, []string{"tor1", "tor2"}) || len(all.PlainToRs("node1")) != 0 {
		t.Errorf("BFD everywhere: %v / %v", got, all.PlainToRs("node1"))
	}
	if got := ref.Addrs("node3", "node1"); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("10.0.0.21"), netip.MustParseAddr("10.0.0.23")}) {
		t.Errorf("addrs %v", got)
	}
	if ref.NodeOf(netip.MustParseAddr("10.0.0.22")) != "node2" || ref.NodeOf(netip.MustParseAddr("10.0.0.9")) != "10.0.0.9" {
		t.Error("NodeOf")
	}
}

func TestToRRoles(t *testing.T) {
	tests := []struct {
		name string
		topo Topology
		want []ToRRole
	}{
		{
			name: "reference: tor1 BFD with the examples' hold time, tor2 the short one",
			topo: Reference(9 * time.Second),
			want: []ToRRole{
				{Name: "tor1", HoldTime: 90 * time.Second, KeepaliveInterval: 30 * time.Second, BFDNodes: []string{"node1", "node2", "node3"}},
				{Name: "tor2", HoldTime: 9 * time.Second, KeepaliveInterval: 3 * time.Second},
			},
		},
		{
			name: "BFD everywhere: one hold time",
			topo: BFDEverywhere(30 * time.Second),
			want: []ToRRole{
				{Name: "tor1", HoldTime: 30 * time.Second, KeepaliveInterval: 10 * time.Second, BFDNodes: []string{"node1", "node2", "node3"}},
				{Name: "tor2", HoldTime: 30 * time.Second, KeepaliveInterval: 10 * time.Second, BFDNodes: []string{"node1", "node2", "node3"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.topo.Roles()
			if !slices.EqualFunc(got, tc.want, func(a, b ToRRole) bool {
				return a.Name == b.Name && a.HoldTime == b.HoldTime && a.KeepaliveInterval == b.KeepaliveInterval && slices.Equal(a.BFDNodes, b.BFDNodes)
			}) {
				t.Errorf("Roles() = %+v, want %+v", got, tc.want)
			}
			for _, r := range got {
				if tc.topo.HoldTimeOf(r.Name) != r.HoldTime || tc.topo.KeepaliveOf(r.Name) != r.KeepaliveInterval {
					t.Errorf("%s: HoldTimeOf/KeepaliveOf disagree with the role %+v", r.Name, r)
				}
				if r.RunsBFD("node2") != tc.topo.RunsBFD(r.Name, "node2") {
					t.Errorf("%s: RunsBFD disagrees", r.Name)
				}
			}
			if err := tc.topo.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
	if _, ok := Reference(9 * time.Second).Role("tor9"); ok {
		t.Error("role of an unknown ToR")
	}
}

func TestHistory(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	p := netip.MustParsePrefix("203.0.113.5/32")
	other := netip.MustParsePrefix("203.0.113.6/32")
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	hist := []Change{
		{At: t0, Prefix: p, New: []netip.Addr{a("10.0.0.21"), a("10.0.0.22")}},
		{At: t0.Add(time.Second), Prefix: other, New: []netip.Addr{a("10.0.0.21")}},
		{At: t0.Add(2 * time.Second), Prefix: p, New: []netip.Addr{a("10.0.0.21")}},
		{At: t0.Add(3 * time.Second), Prefix: p, New: []netip.Addr{a("10.0.0.22"), a("10.0.0.21")}},
	}
	cs := Since(hist, p, t0.Add(time.Second))
	if len(cs) != 2 {
		t.Fatalf("since: %d changes", len(cs))
	}
	if c, ok := FirstWithout(cs, a("10.0.0.22")); !ok || !c.At.Equal(t0.Add(2*time.Second)) {
		t.Errorf("first without: %v %v", c, ok)
	}
	if c, ok := FirstTo(cs, []netip.Addr{a("10.0.0.21"), a("10.0.0.22")}); !ok || !c.At.Equal(t0.Add(3*time.Second)) {
		t.Errorf("first to (any order): %v %v", c, ok)
	}
	if at, err := SettledAt(cs, []netip.Addr{a("10.0.0.22"), a("10.0.0.21")}); err != nil || !at.Equal(t0.Add(3*time.Second)) {
		t.Errorf("settled: %v %v", at, err)
	}
	if _, err := SettledAt(cs, []netip.Addr{a("10.0.0.21")}); err == nil {
		t.Error("settled on the wrong set must fail")
	}
	if at, err := SettledAt(nil, nil); err != nil || !at.IsZero() {
		t.Errorf("no change: %v %v", at, err)
	}
}

func TestRuntimeOff(t *testing.T) {
	base := Runtime{Goroutines: 100, HeapInuse: 10 << 20, GCForced: true}
	tests := []struct {
		name string
		now  Runtime
		want string // "" within tolerance
	}{
		{"same", base, ""},
		{"goroutines at the edge", Runtime{Goroutines: 109, HeapInuse: 10 << 20, GCForced: true}, ""},
		{"goroutines leaked", Runtime{Goroutines: 110, HeapInuse: 10 << 20, GCForced: true}, "110 goroutines, baseline 100"},
		{"goroutines gone", Runtime{Goroutines: 90, HeapInuse: 10 << 20, GCForced: true}, "90 goroutines"},
		{"heap within GC slack", Runtime{Goroutines: 100, HeapInuse: 11.4 * (1 << 20), GCForced: true}, ""},
		{"heap grown", Runtime{Goroutines: 100, HeapInuse: 12 << 20, GCForced: true}, "heap in use 12.0 MiB"},
		{"heap without forced GC has more slack", Runtime{Goroutines: 100, HeapInuse: 14 << 20}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RuntimeOff("node1", base, tt.now)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want within tolerance", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFabricFault(t *testing.T) {
	f, ok := FabricFault(Fault{Kind: FaultBFDFlap, Target: "node2", ToR: "tor1", Duration: time.Second})
	if !ok || f.Kind != fabric.FaultBFDFlap || f.Target != "node2" || f.ToR != "tor1" || f.Duration != time.Second {
		t.Errorf("bfd-flap: %+v %v", f, ok)
	}
	for _, k := range []FaultKind{FaultToRDown, FaultToRRestart, FaultBFDAdminDown} {
		if _, ok := FabricFault(Fault{Kind: k, Target: "tor1"}); !ok {
			t.Errorf("%s: not a fabric fault", k)
		}
	}
	for _, k := range []FaultKind{FaultLinkCut, FaultSpeakerFreeze, FaultSpeakerRestart, FaultControllerRestart, FaultAPIServerDown} {
		if _, ok := FabricFault(Fault{Kind: k, Target: "node1"}); ok {
			t.Errorf("%s: taken for a fabric fault; the backend injects it", k)
		}
	}
}
