package responder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// linkInfo is what the responder needs of an interface.
type linkInfo struct {
	index int
	mac   net.HardwareAddr
	// up: administratively up and with carrier (IFF_UP and IFF_RUNNING);
	// nothing can be answered otherwise, and when it comes back the IPs are
	// announced again.
	up bool
}

func (a linkInfo) same(b linkInfo) bool {
	return a.index == b.index && string(a.mac) == string(b.mac)
}

// system opens what the responder needs; a fake stands in for it in unit tests.
type system interface {
	link(name string) (linkInfo, error)
	openARP(name string, li linkInfo) (arpConn, error)
	openNDP(name string, li linkInfo) (ndpConn, error)
}

// arpConn receives and sends ARP packets on one interface.
type arpConn interface {
	// read blocks for the next ARP packet; it fails once the conn is closed.
	read() (*arp.Packet, error)
	write(p *arp.Packet, dst net.HardwareAddr) error
	close() error
}

// ndpConn receives Neighbor Solicitations and sends advertisements on one
// interface.
type ndpConn interface {
	// read blocks for the next Neighbor Solicitation; it fails once the
	// conn is closed.
	read() (*ndp.NeighborSolicitation, netip.Addr, error)
	write(m ndp.Message, dst netip.Addr) error
	join(group netip.Addr) error
	leave(group netip.Addr) error
	close() error
}

// hostSystem is the real system: the network namespace of the calling thread.
type hostSystem struct{}

// enterSystem is the real system where enter runs its function (a network
// namespace): sockets opened there stay there for their life.
type enterSystem struct{ enter func(func() error) error }

func (s enterSystem) link(name string) (li linkInfo, err error) {
	err = s.enter(func() error {
		li, err = hostSystem{}.link(name)
		return err
	})
	return li, err
}

func (s enterSystem) openARP(name string, li linkInfo) (c arpConn, err error) {
	err = s.enter(func() error {
		c, err = hostSystem{}.openARP(name, li)
		return err
	})
	return c, err
}

func (s enterSystem) openNDP(name string, li linkInfo) (c ndpConn, err error) {
	err = s.enter(func() error {
		c, err = hostSystem{}.openNDP(name, li)
		return err
	})
	return c, err
}

func (hostSystem) link(name string) (linkInfo, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return linkInfo{}, err
	}
	return linkInfo{index: ifi.Index, mac: ifi.HardwareAddr,
		up: ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0}, nil
}

func ifaceOf(name string, li linkInfo) (*net.Interface, error) {
	ifi, err := net.InterfaceByIndex(li.index)
	if err != nil {
		return nil, err
	}
	if ifi.Name != name {
		return nil, fmt.Errorf("interface index %d is now %s", li.index, ifi.Name)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("hardware address %q is not an Ethernet address", ifi.HardwareAddr)
	}
	return ifi, nil
}

// etherTypeARP is the EtherType the packet socket is bound to: the kernel
// hands it ARP frames only.
const etherTypeARP = 0x0806

// openARP binds an AF_PACKET socket to the interface for ARP frames. The
// arp package's Client is not used: it refuses an interface without an IPv4
// address of its own, which an interface answering for a Service IP need not
// have; its packet codec is used, with mdlayher/ethernet for the framing.
func (hostSystem) openARP(name string, li linkInfo) (arpConn, error) {
	ifi, err := ifaceOf(name, li)
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
	if err != nil {
		return nil, fmt.Errorf("ARP socket: %w", err)
	}
	return &packetARP{c: c, buf: make([]byte, 1514)}, nil
}

type packetARP struct {
	c   *packet.Conn
	buf []byte // used by read only, from one goroutine
}

func (p *packetARP) read() (*arp.Packet, error) {
	for {
		n, _, err := p.c.ReadFrom(p.buf)
		if err != nil {
			return nil, err
		}
		var f ethernet.Frame
		if f.UnmarshalBinary(p.buf[:n]) != nil || f.EtherType != ethernet.EtherTypeARP {
			continue
		}
		var a arp.Packet
		if a.UnmarshalBinary(f.Payload) != nil {
			continue
		}
		return &a, nil
	}
}

func (p *packetARP) write(a *arp.Packet, dst net.HardwareAddr) error {
	b, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	f := &ethernet.Frame{Destination: dst, Source: a.SenderHardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: b}
	fb, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = p.c.WriteTo(fb, &packet.Addr{HardwareAddr: dst})
	return err
}

func (p *packetARP) close() error { return p.c.Close() }

// openNDP opens two sockets on the interface. Solicitations are read from
// an AF_PACKET socket for IPv6 frames, filtered in the kernel (BPF) to
// ICMPv6 Neighbor Solicitations received for this host: it sees the unicast
// ones too, which a client sends to the Service IP itself when it
// re-validates its entry (RFC 4861 7.3.3, PROBE) and which the kernel
// delivers to no ICMPv6 socket, the IP not being local. Advertisements are
// sent, and the solicited-node groups joined (so that the interface accepts
// the multicast solicitations), on a raw ICMPv6 socket bound to the
// interface's link-local address, the source RFC 4861 asks for; it reads
// nothing (its ICMPv6 filter blocks every type). It fails while that address
// is tentative (duplicate address detection, about a second after the link
// comes up); the responder retries.
//
// ndp.Conn is not used for the ICMPv6 socket, only ndp's message codec: it
// names the interface by name in the zone of every address it writes to, and
// the net package turns that name into an index through a process-wide cache
// that stays stale for up to a minute after an interface is recreated (and
// is wrong for a socket of another network namespace), which makes sendmsg
// fail with EINVAL when the index differs from the one in the packet info.
// Here the interface is named by index only.
func (hostSystem) openNDP(name string, li linkInfo) (ndpConn, error) {
	ifi, err := ifaceOf(name, li)
	if err != nil {
		return nil, err
	}
	src, err := linkLocal(ifi)
	if err != nil {
		return nil, fmt.Errorf("NDP socket: %w", err)
	}
	ic, err := icmp.ListenPacket("ip6:ipv6-icmp", src.WithZone(strconv.Itoa(ifi.Index)).String())
	if err != nil {
		return nil, fmt.Errorf("NDP socket: %w", err)
	}
	pc := ic.IPv6PacketConn()
	var f ipv6.ICMPFilter
	f.SetAll(true) // reads come from the packet socket
	for _, set := range []func() error{
		func() error { return pc.SetHopLimit(ndp.HopLimit) }, // RFC 4861: 255, or receivers drop it
		func() error { return pc.SetMulticastHopLimit(ndp.HopLimit) },
		func() error { return pc.SetChecksum(true, 2) }, // the kernel fills in the ICMPv6 checksum
		func() error { return pc.SetMulticastInterface(ifi) },
		func() error { return pc.SetMulticastLoopback(false) },
		func() error { return pc.SetICMPFilter(&f) },
	} {
		if err := set(); err != nil {
			_ = ic.Close()
			return nil, fmt.Errorf("NDP socket: %w", err)
		}
	}
	pk, err := packet.Listen(ifi, packet.Raw, etherTypeIPv6, &packet.Config{Filter: nsFilter})
	if err != nil {
		_ = ic.Close()
		return nil, fmt.Errorf("NDP packet socket: %w", err)
	}
	return &rawNDP{c: ic, pc: pc, pk: pk, ifi: ifi, src: src, buf: make([]byte, max(ifi.MTU, 1280)+ethHeaderLen)}, nil
}

const (
	etherTypeIPv6 = 0x86dd
	ethHeaderLen  = 14
	ipv6HeaderLen = 40
)

// nsFilter passes the frames received for this host (unicast to it,
// broadcast or multicast; not those the host sends, nor those seen only in
// promiscuous mode) that carry an ICMPv6 Neighbor Solicitation right after
// the IPv6 header, as solicitations always do.
var nsFilter = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType}, // skb->pkt_type: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing
		bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: 2, SkipTrue: 7},
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: 5},
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1}, // next header
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 58, SkipTrue: 3},
		bpf.LoadAbsolute{Off: ethHeaderLen + ipv6HeaderLen, Size: 1}, // ICMPv6 type
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(ipv6.ICMPTypeNeighborSolicitation), SkipTrue: 1},
		bpf.RetConstant{Val: 0xffff},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err)
	}
	return raw
}()

// parseNS returns the Neighbor Solicitation in an Ethernet frame and its
// source address, or ok false for anything else or anything RFC 4861 7.1.1
// says to drop (hop limit other than 255).
func parseNS(frame []byte) (ns *ndp.NeighborSolicitation, src netip.Addr, ok bool) {
	if len(frame) < ethHeaderLen+ipv6HeaderLen {
		return nil, netip.Addr{}, false
	}
	ip := frame[ethHeaderLen:]
	if ip[0]>>4 != 6 || ip[6] != 58 || ip[7] != ndp.HopLimit {
		return nil, netip.Addr{}, false
	}
	plen := int(ip[4])<<8 | int(ip[5])
	if ipv6HeaderLen+plen > len(ip) {
		return nil, netip.Addr{}, false
	}
	m, err := ndp.ParseMessage(ip[ipv6HeaderLen : ipv6HeaderLen+plen])
	if err != nil {
		return nil, netip.Addr{}, false
	}
	ns, ok = m.(*ndp.NeighborSolicitation)
	if !ok {
		return nil, netip.Addr{}, false
	}
	return ns, netip.AddrFrom16([16]byte(ip[8:24])), true
}

// linkLocal returns the interface's first link-local IPv6 address.
func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("no link-local IPv6 address yet")
}

type rawNDP struct {
	c   *icmp.PacketConn // sends, holds the groups
	pc  *ipv6.PacketConn
	pk  *packet.Conn // receives
	ifi *net.Interface
	src netip.Addr
	buf []byte // used by read only, from one goroutine
}

func (r *rawNDP) read() (*ndp.NeighborSolicitation, netip.Addr, error) {
	for {
		n, _, err := r.pk.ReadFrom(r.buf)
		if err != nil {
			return nil, netip.Addr{}, err
		}
		if ns, src, ok := parseNS(r.buf[:n]); ok && src != r.src {
			return ns, src, nil
		}
	}
}

func (r *rawNDP) write(m ndp.Message, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: r.src.AsSlice(), IfIndex: r.ifi.Index}
	_, err = r.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.WithZone("").AsSlice()})
	return err
}

func (r *rawNDP) join(g netip.Addr) error { return r.pc.JoinGroup(r.ifi, &net.IPAddr{IP: g.AsSlice()}) }
func (r *rawNDP) leave(g netip.Addr) error {
	return r.pc.LeaveGroup(r.ifi, &net.IPAddr{IP: g.AsSlice()})
}
func (r *rawNDP) close() error { return errors.Join(r.pk.Close(), r.c.Close()) }
