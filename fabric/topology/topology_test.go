package topology

import (
	"net/netip"
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
			topo, err := Parse([]byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, topo)
		})
	}
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
