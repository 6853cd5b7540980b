package router

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
)

// The samples in testdata/frr were printed by FRR 8.4 (Debian 12) on this
// machine: a ToR with two nodes, eBGP and iBGP, IPv4 and IPv6 routes over IPv4
// sessions, a shut-down neighbor, a dynamic one, BFD up and shut down.

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "frr", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func TestParseTableFingerprints(t *testing.T) {
	fp := func(file string) map[netip.Prefix]string {
		t.Helper()
		m, err := parseTableFingerprints(sample(t, file))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	two, one, v6 := fp("v4.json"), fp("v4-single.json"), fp("v6.json")
	for name, m := range map[string]map[netip.Prefix]string{"v4.json": two, "v4-single.json": one} {
		if len(m) != 1 || m[pfx("203.0.113.5/32")] == "" {
			t.Errorf("%s: %v, want 203.0.113.5/32 alone", name, m)
		}
	}
	if len(v6) != 1 || v6[pfx("2001:db8::5/128")] == "" {
		t.Errorf("v6.json: %v, want 2001:db8::5/128 alone", v6)
	}
	// Two paths and one differ.
	if two[pfx("203.0.113.5/32")] == one[pfx("203.0.113.5/32")] {
		t.Error("the fingerprints of two paths and of one are equal")
	}
	if _, err := parseTableFingerprints([]byte(`{"routes": {"not-a-prefix": []}}`)); err == nil {
		t.Error("a bad prefix key parsed")
	}
	if _, err := parseTableFingerprints([]byte(`% Unknown command`)); err == nil {
		t.Error("an error text parsed")
	}
}

func TestParseDetail(t *testing.T) {
	asns := map[netip.Addr]uint32{addr("10.99.0.21"): 65100, addr("10.99.0.22"): 65100}
	ebgp := func(hop, peer string) rib.Path {
		return rib.Path{NextHop: addr(hop), Peer: addr(peer), PeerASN: 65100, ASPath: []uint32{65100},
			Communities: []string{"65100:7", "65100:8"}, LargeCommunities: []string{"65100:1:2"}}
	}
	tests := []struct {
		name   string
		file   string
		asns   map[netip.Addr]uint32
		prefix netip.Prefix
		want   []rib.Path
		absent bool
	}{
		{
			name: "two eBGP multipaths with communities and large communities", file: "v4-detail.json", asns: asns,
			prefix: pfx("203.0.113.5/32"),
			want:   []rib.Path{ebgp("10.99.0.21", "10.99.0.21"), ebgp("10.99.0.22", "10.99.0.22")},
		},
		{
			name: "IPv6: the global next-hop, not the link-local one", file: "v6-detail.json", asns: asns,
			prefix: pfx("2001:db8::5/128"),
			want:   []rib.Path{ebgp("fd00:99::21", "10.99.0.21"), ebgp("fd00:99::22", "10.99.0.22")},
		},
		{
			name: "iBGP: local-pref, empty AS path, well-known communities by number, peer AS from the neighbors",
			file: "ibgp-detail.json", asns: map[netip.Addr]uint32{addr("10.99.0.22"): 65000},
			prefix: pfx("203.0.113.9/32"),
			want: []rib.Path{{NextHop: addr("10.99.0.22"), Peer: addr("10.99.0.22"), PeerASN: 65000, LocalPref: 100,
				Communities: []string{"65100:7", "65535:0", "65535:666", "65535:65281"}}},
		},
		{
			name: "iBGP peer of unknown AS: the local AS", file: "ibgp-detail.json", asns: nil,
			prefix: pfx("203.0.113.9/32"),
			want: []rib.Path{{NextHop: addr("10.99.0.22"), Peer: addr("10.99.0.22"), PeerASN: 65000, LocalPref: 100,
				Communities: []string{"65100:7", "65535:0", "65535:666", "65535:65281"}}},
		},
		{name: "a prefix bgpd does not have", file: "absent-detail.json", absent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, paths, ok, err := parseDetail(sample(t, tc.file), 65000, func(a netip.Addr) uint32 { return tc.asns[a] })
			if err != nil {
				t.Fatal(err)
			}
			if ok == tc.absent {
				t.Fatalf("ok = %v, want %v", ok, !tc.absent)
			}
			if p != tc.prefix || !reflect.DeepEqual(paths, tc.want) {
				t.Errorf("got %v %+v\nwant %v %+v", p, paths, tc.prefix, tc.want)
			}
		})
	}
	// Of an eBGP and an iBGP path only the best one is in the set (no
	// multipath across them).
	_, paths, _, err := parseDetail(sample(t, "mixed-detail.json"), 65000, nil)
	if err != nil || len(paths) != 1 {
		t.Errorf("mixed eBGP/iBGP: %d paths (%+v), %v; want the best one only", len(paths), paths, err)
	}
}

func TestMergePaths(t *testing.T) {
	a, b, c := addr("10.0.0.21"), addr("10.0.0.22"), addr("10.0.0.23")
	pa := rib.Path{NextHop: a, Peer: a, Communities: []string{"1:1"}}
	pb := rib.Path{NextHop: b, Peer: b, LocalPref: 7}
	tests := []struct {
		name   string
		kernel []netip.Addr
		bgp    []rib.Path
		want   []rib.Path
	}{
		{"both agree", []netip.Addr{a, b}, []rib.Path{pb, pa}, []rib.Path{pa, pb}},
		{"kernel behind bgpd: only what forwards", []netip.Addr{a}, []rib.Path{pa, pb}, []rib.Path{pa}},
		{"kernel ahead of the detail: a bare next-hop", []netip.Addr{a, c}, []rib.Path{pa}, []rib.Path{pa, {NextHop: c}}},
		{"no kernel route: withdrawn", nil, []rib.Path{pa}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergePaths(tc.kernel, tc.bgp); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mergePaths = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestControlNeighbors(t *testing.T) {
	now := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	names := map[netip.Addr]string{addr("10.99.0.21"): "node1", addr("10.99.0.22"): "node2"}
	tests := []struct {
		file string
		bfd  map[netip.Addr]string
		want []control.Neighbor
	}{
		{
			file: "nbr-up.json", bfd: map[netip.Addr]string{addr("10.99.0.21"): "Up"},
			want: []control.Neighbor{
				{Name: "node1", Address: addr("10.99.0.21"), ASN: 65100, State: "established", Since: now.Add(-89 * time.Second),
					Received: 2, Accepted: 2, MsgIn: 37, MsgOut: 38, BFD: "Up",
					HoldTime: 9 * time.Second, ConfiguredHoldTime: 9 * time.Second, ConfiguredKeepalive: 3 * time.Second},
			},
		},
		{
			file: "nbr-shutdown.json",
			want: []control.Neighbor{
				{Name: "node2", Address: addr("10.99.0.22"), ASN: 65100, State: "idle", AdminDown: true, Since: now.Add(-time.Second),
					HoldTime: 9 * time.Second, ConfiguredHoldTime: 9 * time.Second, ConfiguredKeepalive: 3 * time.Second},
			},
		},
		{
			file: "nbr-dynamic.json",
			want: []control.Neighbor{
				{Name: "node2", Address: addr("10.99.0.22"), ASN: 65100, State: "established", Dynamic: true, Since: now.Add(-3 * time.Second),
					Received: 2, Accepted: 2, HoldTime: 9 * time.Second, ConfiguredHoldTime: 9 * time.Second, ConfiguredKeepalive: 3 * time.Second},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			ns, err := parseNeighbors(sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := controlNeighbors(ns, names, tc.bfd, now)
			// Compare the neighbor the sample is about; counters of the
			// other one are checked in nbr-up.
			var sel []control.Neighbor
			for _, n := range got {
				if n.Address == tc.want[0].Address {
					n.MsgIn, n.MsgOut = zeroUnless(tc.file == "nbr-up.json", n.MsgIn), zeroUnless(tc.file == "nbr-up.json", n.MsgOut)
					sel = append(sel, n)
				}
			}
			if len(got) != 2 || !reflect.DeepEqual(sel, tc.want) {
				t.Errorf("neighbors (%d) = %+v\nwant %+v", len(got), sel, tc.want)
			}
		})
	}
	if _, err := parseNeighbors([]byte("[]")); err == nil {
		t.Error("a list parsed as neighbors")
	}
}

func zeroUnless(keep bool, v uint64) uint64 {
	if keep {
		return v
	}
	return 0
}

func TestBGPStates(t *testing.T) {
	ns, err := parseNeighbors(sample(t, "nbr-shutdown.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]string{addr("10.99.0.21"): "established", addr("10.99.0.22"): "idle"}
	if got := bgpStates(ns); !reflect.DeepEqual(got, want) {
		t.Errorf("bgpStates = %v, want %v", got, want)
	}
	for in, want := range map[string]string{"Established": "established", "OpenSent": "opensent", "Active": "active", "Clearing": "idle", "Deleted": "idle"} {
		if got := bgpStateName(in); got != want {
			t.Errorf("bgpStateName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestControlBFD(t *testing.T) {
	now := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	seen := now.Add(-1500 * time.Millisecond)
	counters, err := parseBFDCounters(sample(t, "bfd-counters.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		last map[netip.Addr]time.Time
		want control.BFDSession
	}{
		{
			file: "bfd-up.json",
			want: control.BFDSession{Local: addr("10.99.0.1"), Peer: addr("10.99.0.21"), State: "Up", RemoteState: "Up",
				LocalDiag: "ok", RemoteDiag: "ok", TxInterval: 300 * time.Millisecond, DetectionTime: 900 * time.Millisecond,
				LastChange: now.Add(-90 * time.Second), PacketsIn: 353, PacketsOut: 351},
		},
		{
			file: "bfd-shutdown.json", last: map[netip.Addr]time.Time{addr("10.99.0.21"): seen},
			want: control.BFDSession{Local: addr("10.99.0.1"), Peer: addr("10.99.0.21"), State: "AdminDown",
				LocalDiag: "ok", RemoteDiag: "neighbor signaled session down", TxInterval: 300 * time.Millisecond,
				LastChange: seen, PacketsIn: 353, PacketsOut: 351},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			ps, err := parseBFDPeers(sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got := controlBFD(ps, counters, tc.last, now)
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Errorf("sessions = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestStateChanges(t *testing.T) {
	a, b, c := addr("10.0.0.21"), addr("10.0.0.22"), addr("10.0.0.23")
	tests := []struct {
		name      string
		prev, cur map[netip.Addr]string
		want      []stateChange
	}{
		{"nothing changed", map[netip.Addr]string{a: "Up"}, map[netip.Addr]string{a: "Up"}, nil},
		{"first poll", nil, map[netip.Addr]string{b: "Down", a: "Up"},
			[]stateChange{{a, "unknown", "Up"}, {b, "unknown", "Down"}}},
		{"one went down", map[netip.Addr]string{a: "Up", b: "Up"}, map[netip.Addr]string{a: "Up", b: "Down"},
			[]stateChange{{b, "Up", "Down"}}},
		{"vanished ends in gone", map[netip.Addr]string{a: "Up", c: "AdminDown"}, map[netip.Addr]string{},
			[]stateChange{{a, "Up", "AdminDown"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := stateChanges(tc.prev, tc.cur, "AdminDown"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stateChanges = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestApplyFRR(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := pfx("203.0.113.5/32")
	a, b := addr("10.0.0.21"), addr("10.0.0.22")
	pa := rib.Path{NextHop: a, Peer: a, PeerASN: 65100, Communities: []string{"1:1"}}
	pb := rib.Path{NextHop: b, Peer: b, PeerASN: 65100, Communities: []string{"1:1"}}
	pa2 := pa
	pa2.Communities = []string{"2:2"}
	type step struct {
		kernel  []kernelChange
		bgp     map[netip.Prefix][]rib.Path // bgpd's paths after this sync
		changed []netip.Prefix              // prefixes whose bgpd detail was read
		now     time.Time
		want    []rib.Change // recorded (Seq left out)
		paths   []rib.Path   // the prefix's set afterwards
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "each kernel change at its own time, with bgpd's attributes",
			steps: []step{{
				kernel: []kernelChange{{At: at(10), Prefix: p, NextHops: []netip.Addr{a}}, {At: at(20), Prefix: p, NextHops: []netip.Addr{a, b}}},
				bgp:    map[netip.Prefix][]rib.Path{p: {pa, pb}}, changed: []netip.Prefix{p}, now: at(30),
				want: []rib.Change{
					{At: at(10), Prefix: p, Kind: rib.KindAdd, Old: []netip.Addr{}, New: []netip.Addr{a}},
					{At: at(20), Prefix: p, Kind: rib.KindUpdate, Old: []netip.Addr{a}, New: []netip.Addr{a, b}},
				},
				paths: []rib.Path{pa, pb},
			}},
		},
		{
			name: "bgpd ahead of the kernel: nothing until the kernel installs",
			steps: []step{
				{bgp: map[netip.Prefix][]rib.Path{p: {pa}}, changed: []netip.Prefix{p}, now: at(5)},
				{kernel: []kernelChange{{At: at(7), Prefix: p, NextHops: []netip.Addr{a}}}, bgp: map[netip.Prefix][]rib.Path{p: {pa}}, now: at(9),
					want:  []rib.Change{{At: at(7), Prefix: p, Kind: rib.KindAdd, Old: []netip.Addr{}, New: []netip.Addr{a}}},
					paths: []rib.Path{pa}},
			},
		},
		{
			name: "an attribute change is stored and records nothing; a bare next-hop gets its attributes later",
			steps: []step{
				{kernel: []kernelChange{{At: at(10), Prefix: p, NextHops: []netip.Addr{a, b}}}, bgp: map[netip.Prefix][]rib.Path{p: {pa}}, now: at(11),
					want:  []rib.Change{{At: at(10), Prefix: p, Kind: rib.KindAdd, Old: []netip.Addr{}, New: []netip.Addr{a, b}}},
					paths: []rib.Path{pa, {NextHop: b}}},
				{bgp: map[netip.Prefix][]rib.Path{p: {pa2, pb}}, changed: []netip.Prefix{p}, now: at(500),
					paths: []rib.Path{pa2, pb}},
			},
		},
		{
			name: "withdraw at the kernel's time",
			steps: []step{
				{kernel: []kernelChange{{At: at(10), Prefix: p, NextHops: []netip.Addr{a}}}, bgp: map[netip.Prefix][]rib.Path{p: {pa}}, now: at(11),
					want:  []rib.Change{{At: at(10), Prefix: p, Kind: rib.KindAdd, Old: []netip.Addr{}, New: []netip.Addr{a}}},
					paths: []rib.Path{pa}},
				{kernel: []kernelChange{{At: at(900), Prefix: p}}, changed: []netip.Prefix{p}, now: at(950),
					want: []rib.Change{{At: at(900), Prefix: p, Kind: rib.KindWithdraw, Old: []netip.Addr{a}, New: []netip.Addr{}}}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rb := rib.New(0)
			for i, st := range tc.steps {
				changed := map[netip.Prefix]bool{}
				for _, x := range st.changed {
					changed[x] = true
				}
				got := applyFRR(rb, st.kernel, changed, st.bgp, st.now)
				for j := range got {
					got[j].Seq = 0
				}
				if len(got) != len(st.want) || len(got) > 0 && !reflect.DeepEqual(got, st.want) {
					t.Errorf("step %d: changes %+v\nwant %+v", i, got, st.want)
				}
				s, _ := rb.Get(p)
				if !reflect.DeepEqual(s.Paths, st.paths) && !(len(s.Paths) == 0 && len(st.paths) == 0) {
					t.Errorf("step %d: paths %+v\nwant %+v", i, s.Paths, st.paths)
				}
			}
		})
	}
}
