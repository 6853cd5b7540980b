package cli

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

func TestReorder(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"203.0.113.5", "--tor", "tor1"}, []string{"--tor", "tor1", "203.0.113.5"}},
		{[]string{"--tor=tor1", "203.0.113.5"}, []string{"--tor=tor1", "203.0.113.5"}},
		{[]string{"node-down", "node1", "--duration", "2s"}, []string{"--duration", "2s", "node-down", "node1"}},
		{[]string{"node1", "192.0.2.1/32", "--bfd", "fast", "192.0.2.2/32"}, []string{"--bfd", "fast", "node1", "192.0.2.1/32", "192.0.2.2/32"}},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}},
		{nil, nil},
	}
	for _, tc := range tests {
		if got := Reorder(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Reorder(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseOutput(t *testing.T) {
	for _, s := range []string{"text", "json"} {
		if _, err := ParseOutput(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := ParseOutput("yaml"); err == nil {
		t.Error("yaml accepted")
	}
}

var now = time.Date(2026, 1, 1, 12, 0, 30, 0, time.UTC)

func TestRenderRoutes(t *testing.T) {
	since := now.Add(-90 * time.Second)
	set := rib.ECMPSet{Prefix: netip.MustParsePrefix("203.0.113.5/32"), Since: since, Paths: []rib.Path{
		{NextHop: netip.MustParseAddr("10.0.0.21"), Peer: netip.MustParseAddr("10.0.0.21"), ASPath: []uint32{65100}},
		{NextHop: netip.MustParseAddr("10.0.0.22"), Peer: netip.MustParseAddr("10.0.0.22"), ASPath: []uint32{65100}},
	}}
	res := []RouteResult{
		{ToR: "tor1", Address: netip.MustParseAddr("10.0.0.1"), Route: &set, Kernel: set.NextHops()},
		{ToR: "tor2", Address: netip.MustParseAddr("10.0.0.2")},
		{ToR: "tor3", Address: netip.MustParseAddr("10.0.0.3"), Err: "frozen"},
	}
	var b bytes.Buffer
	renderRoutes(&b, topology.Default().Nodes, res, now)
	want := `tor1 (10.0.0.1):
B>* 203.0.113.5/32 [20/0]  via 10.0.0.21,  eth0,  weight 1,  00:01:30  (node1, AS path 65100)
  *                        via 10.0.0.22,  eth0,  weight 1,  00:01:30  (node2, AS path 65100)
  ECMP next-hops: 2, changed 11:59:00.000000Z (00:01:30 ago); kernel FIB: 10.0.0.21,10.0.0.22

tor2 (10.0.0.2):
  % Network not in table

tor3 (10.0.0.3):
  error: frozen
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestRenderHistoryAndNeighbors(t *testing.T) {
	var b bytes.Buffer
	renderHistory(&b, "tor1", []rib.Change{{Seq: 7, At: now, Prefix: netip.MustParsePrefix("203.0.113.5/32"), Kind: rib.KindUpdate,
		Old: []netip.Addr{netip.MustParseAddr("10.0.0.21"), netip.MustParseAddr("10.0.0.22")}, New: []netip.Addr{netip.MustParseAddr("10.0.0.22")}}})
	if !strings.Contains(b.String(), "7    2026-01-01T12:00:30.000000Z  203.0.113.5/32  update  10.0.0.21,10.0.0.22  10.0.0.22") {
		t.Errorf("history:\n%s", b.String())
	}
	b.Reset()
	renderNeighbors(&b, "tor1", []control.Neighbor{{Name: "node1", Address: netip.MustParseAddr("10.0.0.21"), ASN: 65100,
		State: "established", Since: now.Add(-time.Hour), Received: 2, Accepted: 2, BFD: "Up", HoldTime: 9 * time.Second, ConfiguredHoldTime: 9 * time.Second}}, now)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "Neighbor") || !strings.Contains(lines[2], "established  01:00:00") ||
		!strings.HasSuffix(lines[2], "9s    Up") {
		t.Errorf("neighbors:\n%s", b.String())
	}
}

func TestRenderNeighborsOfferedHoldTime(t *testing.T) {
	var b bytes.Buffer
	renderNeighbors(&b, "tor1", []control.Neighbor{{Name: "node1", Address: netip.MustParseAddr("10.0.0.21"), ASN: 65100,
		State: "established", HoldTime: 9 * time.Second, ConfiguredHoldTime: 90 * time.Second}}, now)
	if !strings.Contains(b.String(), "9s (offers 1m30s)") {
		t.Errorf("neighbors:\n%s", b.String())
	}
}
