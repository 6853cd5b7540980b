package responder

import (
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

// allNodes is ff02::1, where unsolicited Neighbor Advertisements go.
var allNodes = netip.MustParseAddr("ff02::1")

// arpReply answers req, an ARP packet seen on an interface with hardware
// address mac, for an IP this node answers for (the caller checks that), or
// returns nil when req is no question to answer: not a request, sent by this
// node (a packet socket also sees what the node sends), or an announcement
// (sender IP equal to target IP: another node's gratuitous ARP, which must
// not be fought over). A probe (sender IP 0.0.0.0, RFC 5227) is answered,
// as the kernel answers for its own addresses, so the prober sees the IP in
// use.
func arpReply(req *arp.Packet, mac net.HardwareAddr) *arp.Packet {
	if req.Operation != arp.OperationRequest || bytes.Equal(req.SenderHardwareAddr, mac) ||
		req.SenderIP == req.TargetIP || len(req.SenderHardwareAddr) != len(mac) {
		return nil
	}
	p, err := arp.NewPacket(arp.OperationReply, mac, req.TargetIP, req.SenderHardwareAddr, req.SenderIP)
	if err != nil {
		return nil
	}
	return p
}

// gratuitousARP returns the two announcements sent for ip when this node
// takes it over, both broadcast: a request with sender and target IP equal
// (RFC 5227's ARP Announcement, arping -U) and a reply whose target hardware
// address is the sender's own (arping -A). Linux takes either as a
// gratuitous ARP and moves an existing neighbour entry to the new address at
// once (arp_is_garp: a reply only when target and sender hardware addresses
// match); other stacks honour one form or the other.
func gratuitousARP(ip netip.Addr, mac net.HardwareAddr) []*arp.Packet {
	req, err1 := arp.NewPacket(arp.OperationRequest, mac, ip, ethernet.Broadcast, ip)
	rep, err2 := arp.NewPacket(arp.OperationReply, mac, ip, mac, ip)
	if err1 != nil || err2 != nil {
		return nil
	}
	return []*arp.Packet{req, rep}
}

// ndpReply answers a Neighbor Solicitation for an IP this node answers for,
// received from src on an interface with hardware address mac, and returns
// the advertisement and where it goes. The Override flag is set: this node
// owns the IP, so a client holding another node's address must replace it
// (RFC 4861 7.2.5). A solicitation from the unspecified address (duplicate
// address detection) is answered to all nodes and not marked solicited
// (RFC 4861 7.2.4). It returns nil for a solicitation this node sent.
func ndpReply(ns *ndp.NeighborSolicitation, src netip.Addr, mac net.HardwareAddr) (*ndp.NeighborAdvertisement, netip.Addr) {
	for _, o := range ns.Options {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source && bytes.Equal(lla.Addr, mac) {
			return nil, netip.Addr{}
		}
	}
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: ns.TargetAddress,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
	if src.WithZone("").IsUnspecified() {
		return na, allNodes
	}
	na.Solicited = true
	return na, src
}

// unsolicitedNA is the advertisement sent to all nodes when this node takes
// ip over: Override set, so every neighbour holding an entry for ip replaces
// its link-layer address (RFC 4861 7.2.6).
func unsolicitedNA(ip netip.Addr, mac net.HardwareAddr) *ndp.NeighborAdvertisement {
	return &ndp.NeighborAdvertisement{Override: true, TargetAddress: ip,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
}

// solicitedNode is the solicited-node multicast group of an IPv6 address,
// where solicitations for it are sent; the interface must be in it for them
// to arrive.
func solicitedNode(ip netip.Addr) netip.Addr {
	g, err := ndp.SolicitedNodeMulticast(ip)
	if err != nil {
		return netip.Addr{}
	}
	return g
}

// backoff is the delay before attempt failures+1, after failures failed
// ones (failures >= 1): lo doubled per failure, at most hi.
func backoff(failures int, lo, hi time.Duration) time.Duration {
	if failures < 1 {
		return lo
	}
	d := lo << min(failures-1, 30)
	if d <= 0 || d > hi {
		return hi
	}
	return d
}
