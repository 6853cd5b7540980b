package topology

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValidAndRoundTrips(t *testing.T) {
	d := Default()
	d.SetDefaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("default topology invalid: %v", err)
	}
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, b)
	}
	if len(back.Nodes) != 3 || back.Nodes[2].Address != netip.MustParseAddr("10.0.0.23") || back.BGP.HoldTime.Std() != 9*time.Second {
		t.Fatalf("round trip lost data: %+v", back)
	}
	if c := back.Clients[0]; c.ToRAddr().String() != "172.31.0.1" || c.Addr().String() != "172.31.0.2" {
		t.Fatalf("client link addresses: %v %v", c.ToRAddr(), c.Addr())
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, topo Topology)
	}{
		{
			name: "minimal with defaults",
			yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
nodes: [{name: n1, address: 10.1.0.11, asn: 65100, bfdProfile: fast}]
bfdProfiles: {fast: {receiveInterval: 50, transmitInterval: 50}}
bgp: {holdTime: 3s}
`,
			check: func(t *testing.T, topo Topology) {
				if topo.ToRs[0].GRPCPort != 50051 {
					t.Errorf("grpc port default: %d", topo.ToRs[0].GRPCPort)
				}
				if topo.BGP.KeepaliveInterval.Std() != time.Second {
					t.Errorf("keepalive default: %v", topo.BGP.KeepaliveInterval.Std())
				}
				if p := topo.BFDProfiles["fast"]; p.DetectMultiplier != 3 || p.ReceiveInterval != 50 {
					t.Errorf("bfd profile: %+v", p)
				}
			},
		},
		{name: "unknown field", yaml: "segment: 10.1.0.0/24\nrouters: []\n", wantErr: "unknown field"},
		{name: "node outside segment", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
nodes: [{name: n1, address: 10.2.0.11, asn: 65100}]
`, wantErr: `node "n1": address 10.2.0.11 is not in segment`},
		{name: "duplicate address", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
nodes: [{name: n1, address: 10.1.0.1, asn: 65100}]
`, wantErr: `already used by "r1"`},
		{name: "undefined bfd profile", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
nodes: [{name: n1, address: 10.1.0.5, asn: 65100, bfdProfile: nope}]
`, wantErr: `bfdProfile "nope" is not defined`},
		{name: "bad bfd interval", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
bfdProfiles: {x: {receiveInterval: 5}}
`, wantErr: "bfdProfiles[x].receiveInterval: 5 is outside 10-60000"},
		{name: "multi-hop bfd profile", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
nodes: [{name: n1, address: 10.1.0.11, asn: 65100, bfdProfile: mh}]
bfdProfiles: {mh: {multihop: true, minimumTtl: 250}}
`, check: func(t *testing.T, topo Topology) {
			if p := topo.BFDProfiles["mh"]; !p.Multihop || p.MinimumTTL != 250 || p.DetectMultiplier != 3 {
				t.Errorf("bfd profile: %+v", p)
			}
		}},
		{name: "minimumTtl without multihop", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
bfdProfiles: {x: {minimumTtl: 250}}
`, wantErr: "bfdProfiles[x].minimumTtl: 250 needs multihop: true"},
		{name: "minimumTtl out of range", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
bfdProfiles: {x: {multihop: true, minimumTtl: 255}}
`, wantErr: "bfdProfiles[x].minimumTtl: 255 is outside 1-254"},
		{name: "client on unknown tor", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
clients: [{name: c, tor: r9, link: 172.31.0.0/30}]
`, wantErr: `client "c": tor "r9" is not defined`},
		{name: "name too long", yaml: `
segment: 10.1.0.0/24
tors: [{name: averyveryverylongname, address: 10.1.0.1, asn: 65000}]
`, wantErr: "must be 1-12 characters"},
		{name: "dual stack", yaml: `
segment: 10.1.0.0/24
segment6: fd00:1::/64
tors: [{name: r1, address: 10.1.0.1, address6: "fd00:1::1", asn: 65000}]
nodes: [{name: n1, address: 10.1.0.11, address6: "fd00:1::11", asn: 65100}]
clients: [{name: c, tor: r1, link: 172.31.0.0/30, link6: "fd00:31::/126"}]
`, check: func(t *testing.T, topo Topology) {
			if c := topo.Clients[0]; c.ToRAddr6().String() != "fd00:31::1" || c.Addr6().String() != "fd00:31::2" {
				t.Errorf("client link6 addresses %v %v", c.ToRAddr6(), c.Addr6())
			}
		}},
		{name: "address6 without segment6", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, address6: "fd00:1::1", asn: 65000}]
`, wantErr: `address6 fd00:1::1 needs segment6`},
		{name: "node without address6 in dual stack", yaml: `
segment: 10.1.0.0/24
segment6: fd00:1::/64
tors: [{name: r1, address: 10.1.0.1, address6: "fd00:1::1", asn: 65000}]
nodes: [{name: n1, address: 10.1.0.11, asn: 65100}]
`, wantErr: `node "n1": address6 is missing`},
		{name: "hold time too short", yaml: `
segment: 10.1.0.0/24
tors: [{name: r1, address: 10.1.0.1, asn: 65000}]
bgp: {holdTime: 1s}
`, wantErr: "bgp.holdTime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if topo, ok := parseCase(t, tc.yaml, tc.wantErr); ok {
				tc.check(t, topo)
			}
		})
	}
}

// parseCase parses yaml and checks the error against wantErr (a substring; "":
// none); ok reports a topology to check further.
func parseCase(t *testing.T, yaml, wantErr string) (_ Topology, ok bool) {
	t.Helper()
	topo, err := Parse([]byte(yaml))
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("err = %v, want containing %q", err, wantErr)
		}
		return Topology{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return topo, true
}

func TestBFDWith(t *testing.T) {
	cases := []struct {
		name string
		node Node
		tor  string
		want bool
	}{
		{"no profile", Node{}, "tor1", false},
		{"profile, every ToR", Node{BFDProfile: "p"}, "tor2", true},
		{"limited, listed", Node{BFDProfile: "p", BFDToRs: []string{"tor1"}}, "tor1", true},
		{"limited, not listed", Node{BFDProfile: "p", BFDToRs: []string{"tor1"}}, "tor2", false},
		{"ToRs without profile", Node{BFDToRs: []string{"tor1"}}, "tor1", false},
	}
	for _, tc := range cases {
		if got := tc.node.BFDWith(tc.tor); got != tc.want {
			t.Errorf("%s: BFDWith(%s) = %v, want %v", tc.name, tc.tor, got, tc.want)
		}
	}
	topo := Default()
	topo.Nodes[0].BFDProfile = "default"
	topo.Nodes[0].BFDToRs = []string{"tor9"}
	if err := topo.Validate(); err == nil || !strings.Contains(err.Error(), `bfdToRs: "tor9"`) {
		t.Fatalf("Validate with an unknown BFD ToR = %v, want an error naming bfdToRs", err)
	}
}

func TestPerToRTimers(t *testing.T) {
	const base = `
segment: 10.1.0.0/24
bgp: {holdTime: 9s, keepaliveInterval: 3s, connectRetry: 2s}
nodes: [{name: n1, address: 10.1.0.11, asn: 65100}]
`
	type timers struct{ hold, keepalive, connectRetry, idleHold time.Duration }
	tests := []struct {
		name    string
		tors    string
		want    map[string]timers // effective timers by ToR
		wantErr string
	}{
		{
			name: "no override inherits the topology's timers",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000}]`,
			want: map[string]timers{"r1": {9 * time.Second, 3 * time.Second, 2 * time.Second, time.Second}},
		},
		{
			name: "hold time override: keepalive a third of it, the rest inherited",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {holdTime: 90s}}, {name: r2, address: 10.1.0.2, asn: 65000}]`,
			want: map[string]timers{
				"r1": {90 * time.Second, 30 * time.Second, 2 * time.Second, time.Second},
				"r2": {9 * time.Second, 3 * time.Second, 2 * time.Second, time.Second},
			},
		},
		{
			name: "keepalive-only override keeps the inherited hold time",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {keepaliveInterval: 1s, idleHoldTimeAfterReset: 5s}}]`,
			want: map[string]timers{"r1": {9 * time.Second, time.Second, 2 * time.Second, 5 * time.Second}},
		},
		{
			name: "every field overridden",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {holdTime: 30s, keepaliveInterval: 10s, connectRetry: 3s, idleHoldTimeAfterReset: 4s}}]`,
			want: map[string]timers{"r1": {30 * time.Second, 10 * time.Second, 3 * time.Second, 4 * time.Second}},
		},
		{
			name:    "hold time too short names the ToR",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000}, {name: r2, address: 10.1.0.2, asn: 65000, bgp: {holdTime: 2s}}]`,
			wantErr: `tor "r2": bgp.holdTime: 2s must be whole seconds, at least 3s`,
		},
		{
			name:    "fractional hold time",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {holdTime: 4500ms}}]`,
			wantErr: `tor "r1": bgp.holdTime: 4.5s`,
		},
		{
			name:    "keepalive above the ToR's hold time",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {holdTime: 3s, keepaliveInterval: 5s}}]`,
			wantErr: `tor "r1": bgp.keepaliveInterval: 5s must be between 1s and the hold time`,
		},
		{
			name:    "inherited keepalive above the ToR's keepalive-only override is checked too",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {keepaliveInterval: 10s}}]`,
			wantErr: `tor "r1": bgp.keepaliveInterval: 10s`,
		},
		{
			name:    "negative connect retry",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {connectRetry: -1s}}]`,
			wantErr: `tor "r1": bgp.connectRetry: -1s must not be negative`,
		},
		{
			name:    "unknown field in the override",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, bgp: {hold: 9s}}]`,
			wantErr: `unknown field`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, ok := parseCase(t, base+"tors: "+tc.tors+"\n", tc.wantErr)
			if !ok {
				return
			}
			for tor, w := range tc.want {
				b := topo.Timers(tor)
				got := timers{b.HoldTime.Std(), b.KeepaliveInterval.Std(), b.ConnectRetry.Std(), b.IdleHoldTimeAfterReset.Std()}
				if got != w {
					t.Errorf("Timers(%s) = %+v, want %+v", tor, got, w)
				}
			}
			// The defaulted topology round-trips: the filled override parses back
			// to the same timers.
			b, err := topo.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil {
				t.Fatalf("parse own output: %v\n%s", err, b)
			}
			for tor := range tc.want {
				if back.Timers(tor) != topo.Timers(tor) {
					t.Errorf("round trip of %s: %+v, want %+v", tor, back.Timers(tor), topo.Timers(tor))
				}
			}
		})
	}
	if got := Default().Timers("nope"); got != Default().BGP {
		t.Errorf("Timers of an unknown ToR = %+v, want the topology's", got)
	}
}

func TestFlavour(t *testing.T) {
	const base = `
segment: 10.1.0.0/24
nodes: [{name: n1, address: 10.1.0.11, asn: 65100}]
`
	tests := []struct {
		name    string
		tors    string
		want    map[string]string // RouterFlavour by ToR
		wantErr string
	}{
		{
			name: "omitted is gobgp",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000}]`,
			want: map[string]string{"r1": FlavourGoBGP},
		},
		{
			name: "one of each",
			tors: `[{name: r1, address: 10.1.0.1, asn: 65000, flavour: frr}, {name: r2, address: 10.1.0.2, asn: 65000, flavour: gobgp}]`,
			want: map[string]string{"r1": FlavourFRR, "r2": FlavourGoBGP},
		},
		{
			name:    "unknown flavour names the ToR and field",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000}, {name: r2, address: 10.1.0.2, asn: 65000, flavour: bird}]`,
			wantErr: `tor "r2": flavour: "bird" must be "gobgp" or "frr"`,
		},
		{
			name:    "flavour is case-sensitive",
			tors:    `[{name: r1, address: 10.1.0.1, asn: 65000, flavour: FRR}]`,
			wantErr: `tor "r1": flavour: "FRR"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, ok := parseCase(t, base+"tors: "+tc.tors+"\n", tc.wantErr)
			if !ok {
				return
			}
			b, err := topo.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil {
				t.Fatalf("parse own output: %v\n%s", err, b)
			}
			for tor, want := range tc.want {
				r, _ := topo.ToR(tor)
				rb, _ := back.ToR(tor)
				if r.RouterFlavour() != want || rb.RouterFlavour() != want {
					t.Errorf("%s: flavour %q (after a round trip %q), want %q", tor, r.RouterFlavour(), rb.RouterFlavour(), want)
				}
			}
		})
	}
}

// TestREADMEExample parses the topology file of fabric/README.md, so the documented
// fields (the per-ToR bgp block among them) cannot drift from the parser.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Topology file\n\n```yaml\n")
	if !ok {
		t.Fatal("no yaml block under '## Topology file' in fabric/README.md")
	}
	doc, _, _ := strings.Cut(rest, "```")
	topo, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("README topology: %v\n%s", err, doc)
	}
	if topo.Timers("tor1").HoldTime.Std() != 90*time.Second || topo.Timers("tor2").HoldTime.Std() != 9*time.Second {
		t.Errorf("README topology timers: tor1 %+v, tor2 %+v", topo.Timers("tor1"), topo.Timers("tor2"))
	}
}
