package topology

import (
	"net/netip"
	"strings"
	"testing"
)

// The L2 segment's defaults (client, pools), the nodes' derived addresses
// and MACs, and errors that name the field.
func TestL2(t *testing.T) {
	const base = `
segment: 10.0.0.0/24
segment6: "fd00:10::/64"
tors: [{name: tor1, address: 10.0.0.1, address6: "fd00:10::1", asn: 65000}]
nodes:
- {name: node1, address: 10.0.0.21, address6: "fd00:10::21", asn: 65100}
- {name: node2, address: 10.0.0.22, address6: "fd00:10::22", asn: 65100}
`
	tests := []struct {
		name    string
		l2      string
		wantErr string
		check   func(t *testing.T, topo Topology)
	}{
		{
			name: "defaults",
			l2:   `{subnet: 192.168.50.0/24, subnet6: "fd00:50::/64"}`,
			check: func(t *testing.T, topo Topology) {
				l := topo.L2
				if l.Client != "l2client" || l.ClientAddress.String() != "192.168.50.1" || l.ClientAddress6.String() != "fd00:50::1" {
					t.Errorf("client: %q %v %v", l.Client, l.ClientAddress, l.ClientAddress6)
				}
				if l.Pool.String() != "192.168.50.128/25" || l.Pool6.String() != "fd00:50::1000/116" {
					t.Errorf("pools: %v %v", l.Pool, l.Pool6)
				}
				n, _ := topo.Node("node2")
				if a, a6 := topo.L2Addr(n), topo.L2Addr6(n); a.String() != "192.168.50.22" || a6.String() != "fd00:50::22" {
					t.Errorf("node2's L2 addresses: %v %v", a, a6)
				}
				mac := topo.L2NodeMAC(n)
				if mac.String() != "02:00:c0:a8:32:16" {
					t.Errorf("node2's MAC: %v", mac)
				}
				if name, ok := topo.L2NodeOfMAC(mac); !ok || name != "node2" {
					t.Errorf("L2NodeOfMAC(%v) = %q, %v", mac, name, ok)
				}
			},
		},
		{
			name: "explicit client and pool",
			l2:   `{subnet: 192.168.60.0/26, client: l2c, clientAddress: 192.168.60.50, pool: 192.168.60.32/28}`,
			check: func(t *testing.T, topo Topology) {
				if l := topo.L2; l.Client != "l2c" || l.Pool.String() != "192.168.60.32/28" || l.Subnet6.IsValid() {
					t.Errorf("l2: %+v", l)
				}
				if n := topo.Nodes[0]; topo.L2Addr6(n).IsValid() {
					t.Errorf("IPv6 address without subnet6: %v", topo.L2Addr6(n))
				}
			},
		},
		{name: "not IPv4", l2: `{subnet: "fd00:50::/64"}`, wantErr: `l2.subnet: "fd00:50::/64" must be an IPv4 prefix`},
		{name: "missing subnet", l2: `{}`, wantErr: `l2.subnet: "invalid Prefix"`},
		{name: "overlaps the segment", l2: `{subnet: 10.0.0.0/16}`, wantErr: `l2.subnet: 10.0.0.0/16 overlaps segment`},
		{name: "node outside a small subnet", l2: `{subnet: 192.168.50.0/28}`, wantErr: `l2.subnet: node "node1"'s L2 address 192.168.50.21`},
		{name: "pool holds a node", l2: `{subnet: 192.168.50.0/24, pool: 192.168.50.16/28}`, wantErr: `l2.pool: 192.168.50.16/28 holds node "node1"'s L2 address`},
		{name: "pool outside", l2: `{subnet: 192.168.50.0/24, pool: 192.168.51.0/28}`, wantErr: `l2.pool: "192.168.51.0/28" must be an IPv4 prefix inside subnet`},
		{name: "client in pool", l2: `{subnet: 192.168.50.0/24, clientAddress: 192.168.50.200}`, wantErr: `l2.clientAddress: 192.168.50.200 is inside pool`},
		{name: "client name taken", l2: `{subnet: 192.168.50.0/24, client: node1}`, wantErr: `l2.client: "node1" is used twice`},
		{name: "client name bad", l2: `{subnet: 192.168.50.0/24, client: L2}`, wantErr: `l2.client: "L2" must be 1-12 of a-z`},
		{name: "subnet6 overlaps segment6", l2: `{subnet: 192.168.50.0/24, subnet6: "fd00:10::/48"}`, wantErr: `l2.subnet6: fd00:10::/48 overlaps segment6`},
		{name: "pool6 without subnet6", l2: `{subnet: 192.168.50.0/24, pool6: "fd00:50::/120"}`, wantErr: `l2.subnet6: missing`},
		{name: "unknown field", l2: `{subnet: 192.168.50.0/24, range: x}`, wantErr: `unknown field "range"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := Parse([]byte(base + "l2: " + tc.l2 + "\n"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
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

// Without an L2 segment nothing is derived.
func TestNoL2(t *testing.T) {
	d := Default()
	if a := d.L2Addr(d.Nodes[0]); a.IsValid() || d.L2NodeMAC(d.Nodes[0]) != nil {
		t.Fatalf("L2 address %v without an L2 segment", a)
	}
	if got := L2MAC(netip.MustParseAddr("10.1.2.3")).String(); got != "02:00:0a:01:02:03" {
		t.Fatalf("L2MAC = %s", got)
	}
}

// A node's l2Address overrides the derived L2 address (kind keeps a node's
// lab address on the L2 segment while Docker places it elsewhere); without an
// l2 segment it is an error naming the node and field.
func TestL2AddressOverride(t *testing.T) {
	topo, err := Parse([]byte(`
segment: 10.0.0.0/24
tors: [{name: tor1, address: 10.0.0.1, asn: 65000}]
nodes:
- {name: node1, address: 10.0.0.130, asn: 65100, l2Address: 192.168.50.21}
l2: {subnet: 192.168.50.0/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := topo.Node("node1")
	if a := topo.L2Addr(n); a.String() != "192.168.50.21" {
		t.Errorf("L2Addr = %v, want the override 192.168.50.21", a)
	}
	if name, ok := topo.L2NodeOfMAC(L2MAC(netip.MustParseAddr("192.168.50.21"))); !ok || name != "node1" {
		t.Errorf("L2NodeOfMAC = %q, %v", name, ok)
	}
	_, err = Parse([]byte(`
segment: 10.0.0.0/24
tors: [{name: tor1, address: 10.0.0.1, asn: 65000}]
nodes:
- {name: node1, address: 10.0.0.21, asn: 65100, l2Address: 192.168.50.21}
`))
	if err == nil || !strings.Contains(err.Error(), `node "node1": l2Address 192.168.50.21 without an l2 segment`) {
		t.Errorf("err = %v", err)
	}
}
