package responder

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

func TestARPReply(t *testing.T) {
	zero := netip.IPv4Unspecified()
	pkt := func(op arp.Operation, sha []byte, spa, tpa netip.Addr) *arp.Packet {
		p, err := arp.NewPacket(op, sha, spa, ethernet.Broadcast, tpa)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		req    *arp.Packet
		answer bool
	}{
		{"request", pkt(arp.OperationRequest, clientMAC, client4, ip4), true},
		{"probe from 0.0.0.0 (RFC 5227)", pkt(arp.OperationRequest, clientMAC, zero, ip4), true},
		{"reply", pkt(arp.OperationReply, clientMAC, client4, ip4), false},
		{"our own request", pkt(arp.OperationRequest, mac, client4, ip4), false},
		{"another node's announcement", pkt(arp.OperationRequest, clientMAC, ip4, ip4), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := arpReply(tc.req, mac)
			if (got != nil) != tc.answer {
				t.Fatalf("answered %v, want %v", got != nil, tc.answer)
			}
			if got == nil {
				return
			}
			if got.Operation != arp.OperationReply || got.SenderIP != tc.req.TargetIP || !slices.Equal(got.SenderHardwareAddr, mac) ||
				got.TargetIP != tc.req.SenderIP || !slices.Equal(got.TargetHardwareAddr, tc.req.SenderHardwareAddr) {
				t.Fatalf("reply %+v", got)
			}
			// It survives the wire.
			b, err := got.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var back arp.Packet
			if err := back.UnmarshalBinary(b); err != nil || back.SenderIP != tc.req.TargetIP {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
}

func TestGratuitousARP(t *testing.T) {
	ps := gratuitousARP(ip4, mac)
	if len(ps) != 2 {
		t.Fatalf("%d packets", len(ps))
	}
	req, rep := ps[0], ps[1]
	if req.Operation != arp.OperationRequest || req.SenderIP != ip4 || req.TargetIP != ip4 || !slices.Equal(req.SenderHardwareAddr, mac) {
		t.Errorf("request %+v", req)
	}
	// Linux's arp_is_garp takes a reply as gratuitous only with THA = SHA.
	if rep.Operation != arp.OperationReply || rep.SenderIP != ip4 || rep.TargetIP != ip4 || !slices.Equal(rep.TargetHardwareAddr, mac) {
		t.Errorf("reply %+v", rep)
	}
}

func TestNDPReply(t *testing.T) {
	na, dst := ndpReply(ns(ip6), client6.WithZone("eth0"), mac)
	if na == nil || dst != client6.WithZone("eth0") || !na.Solicited || !na.Override || na.TargetAddress != ip6 || !hasTargetLLA(na, mac) {
		t.Errorf("unicast: %+v to %v", na, dst)
	}
	na, dst = ndpReply(&ndp.NeighborSolicitation{TargetAddress: ip6}, netip.IPv6Unspecified().WithZone("eth0"), mac)
	if na == nil || dst != allNodes || na.Solicited || !na.Override {
		t.Errorf("DAD: %+v to %v", na, dst)
	}
	own := &ndp.NeighborSolicitation{TargetAddress: ip6, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}
	if na, _ := ndpReply(own, client6, mac); na != nil {
		t.Errorf("answered our own solicitation: %+v", na)
	}
	if _, err := ndp.MarshalMessage(unsolicitedNA(ip6, mac)); err != nil {
		t.Errorf("unsolicited NA does not marshal: %v", err)
	}
}

func TestSolicitedNode(t *testing.T) {
	if g := solicitedNode(netip.MustParseAddr("2001:db8::aa:bbcc:10")); g != netip.MustParseAddr("ff02::1:ffcc:10") {
		t.Errorf("group %v", g)
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 100 * ms}, {1, 100 * ms}, {2, 200 * ms}, {3, 400 * ms}, {6, 3200 * ms}, {7, 5 * time.Second}, {64, 5 * time.Second}} {
		if got := backoff(tc.failures, 100*ms, 5*time.Second); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

// parseNS takes a solicitation out of an Ethernet frame as the packet socket
// delivers it, and drops what RFC 4861 says to drop.
func TestParseNS(t *testing.T) {
	body, err := ndp.MarshalMessage(ns(ip6))
	if err != nil {
		t.Fatal(err)
	}
	frame := func(hop byte, next byte, trim int) []byte {
		b := make([]byte, ethHeaderLen+ipv6HeaderLen, ethHeaderLen+ipv6HeaderLen+len(body))
		b[12], b[13] = 0x86, 0xdd
		ip := b[ethHeaderLen:]
		ip[0] = 6 << 4
		ip[4], ip[5] = byte(len(body)>>8), byte(len(body))
		ip[6], ip[7] = next, hop
		src := netip.MustParseAddr("2001:db8::1").As16()
		copy(ip[8:24], src[:])
		b = append(b, body...)
		return b[:len(b)-trim]
	}
	got, src, ok := parseNS(frame(255, 58, 0))
	if !ok || got.TargetAddress != ip6 || src != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("parseNS = %+v, %v, %v", got, src, ok)
	}
	for name, f := range map[string][]byte{
		"hop limit 64":      frame(64, 58, 0),
		"not ICMPv6":        frame(255, 17, 0),
		"truncated payload": frame(255, 58, 4),
		"runt":              frame(255, 58, 0)[:30],
	} {
		if _, _, ok := parseNS(f); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if len(nsFilter) != 10 {
		t.Errorf("filter has %d instructions", len(nsFilter))
	}
}
