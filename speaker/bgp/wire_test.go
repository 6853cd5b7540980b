package bgp

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"testing/iotest"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func update(t *testing.T, withdrawn []*bgp.IPAddrPrefix, attrs []bgp.PathAttributeInterface, nlri []*bgp.IPAddrPrefix) []byte {
	t.Helper()
	m, err := bgp.NewBGPUpdateMessage(withdrawn, attrs, nlri).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func nextHops(t *testing.T, m []byte) []string {
	t.Helper()
	msg, err := bgp.ParseBGPMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range msg.Body.(*bgp.BGPUpdate).PathAttributes {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			out = append(out, a.Value.String())
		case *bgp.PathAttributeMpReachNLRI:
			out = append(out, a.Nexthop.String())
		}
	}
	return out
}

func TestRewriteNextHops(t *testing.T) {
	lo, real := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.21")
	v6 := []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(128, "2001:db8::5")}
	pfx := []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(32, "203.0.113.5")}
	origin := bgp.NewPathAttributeOrigin(0)
	bigCommunities := make([]uint32, 100) // > 255 bytes: extended-length attribute before the next-hop
	for _, tc := range []struct {
		name     string
		attrs    []bgp.PathAttributeInterface
		from, to netip.Addr
		want     []string
	}{
		{"ipv4 next-hop of the loopback hop", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop("127.0.0.1")}, lo, real, []string{"10.0.0.21"}},
		{"explicit next-hop kept", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop("10.0.0.99")}, lo, real, []string{"10.0.0.99"}},
		{"after an extended-length attribute", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeCommunities(bigCommunities), bgp.NewPathAttributeNextHop("127.0.0.1")}, lo, real, []string{"10.0.0.21"}},
		{"ipv6 route, ipv4-mapped loopback", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeMpReachNLRI("::ffff:127.0.0.1", v6)}, lo, real, []string{"10.0.0.21"}}, // net.IP prints the mapped form as IPv4,
		{"ipv6 route, explicit next-hop kept", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeMpReachNLRI("2001:db8::21", v6)}, lo, real, []string{"2001:db8::21"}},
		{"ipv6 session", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeMpReachNLRI("::ffff:127.0.0.1", v6)}, lo, netip.MustParseAddr("2001:db8::21"), []string{"2001:db8::21"}},
		{"ipv4 next-hop, ipv6 session: left alone", []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop("127.0.0.1")}, lo, netip.MustParseAddr("2001:db8::21"), []string{"127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nlri []*bgp.IPAddrPrefix
			if _, mp := tc.attrs[len(tc.attrs)-1].(*bgp.PathAttributeMpReachNLRI); !mp {
				nlri = pfx
			}
			m := update(t, nil, tc.attrs, nlri)
			if err := rewriteNextHops(m, tc.from, tc.to); err != nil {
				t.Fatal(err)
			}
			if got := nextHops(t, m); len(got) != 1 || got[0] != tc.want[0] {
				t.Errorf("next-hops %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCountPrefixes(t *testing.T) {
	v4 := []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(32, "198.18.0.1"), bgp.NewIPAddrPrefix(24, "198.18.1.0"), bgp.NewIPAddrPrefix(0, "0.0.0.0")}
	v6 := []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(128, "2001:db8::5"), bgp.NewIPv6AddrPrefix(64, "2001:db8:1::")}
	origin := bgp.NewPathAttributeOrigin(0)
	for _, tc := range []struct {
		name string
		m    []byte
		want int
	}{
		{"ipv4 nlri", update(t, nil, []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop("10.0.0.1")}, v4), 3},
		{"withdrawals only", update(t, v4, nil, nil), 0},
		{"end-of-rib", update(t, nil, nil, nil), 0},
		{"mp_reach ipv6", update(t, nil, []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeMpReachNLRI("2001:db8::1", v6)}, nil), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := countPrefixes(tc.m)
			if err != nil || got != tc.want {
				t.Errorf("countPrefixes = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestMalformedUpdates(t *testing.T) {
	good := update(t, nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("127.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(32, "203.0.113.5")})
	lo, real := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.21")
	for _, cut := range []int{headerLen, headerLen + 1, headerLen + 3, headerLen + 6, len(good) - 6} {
		m := bytes.Clone(good[:cut])
		if err := rewriteNextHops(m, lo, real); !errors.Is(err, errMalformed) && cut < len(good)-6 {
			t.Errorf("cut at %d: rewrite err %v, want malformed", cut, err)
		}
	}
	// A prefix length claiming more bytes than the message holds.
	m := bytes.Clone(good)
	m[len(m)-5] = 32 + 8
	if _, err := countPrefixes(m); !errors.Is(err, errMalformed) {
		t.Errorf("overlong NLRI: err %v, want malformed", err)
	}
}

func TestReadMessage(t *testing.T) {
	u := update(t, nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop("10.0.0.1")},
		[]*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(32, "203.0.113.5")})
	stream := append(append(bytes.Clone(keepalive), u...), keepalive...)
	r := iotest.OneByteReader(bytes.NewReader(stream))
	buf := make([]byte, 0, 4)
	var types []byte
	for {
		m, err := readMessage(r, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, msgType(m))
		buf = m
	}
	if !bytes.Equal(types, []byte{msgKeepalive, msgUpdate, msgKeepalive}) {
		t.Errorf("types %v", types)
	}
	if _, err := bgp.ParseBGPMessage(keepalive); err != nil {
		t.Errorf("keepalive does not parse: %v", err)
	}
	bad := bytes.Clone(keepalive)
	bad[17] = 3
	if _, err := readMessage(bytes.NewReader(bad), nil); !errors.Is(err, errMalformed) {
		t.Errorf("length 3: err %v", err)
	}
}
