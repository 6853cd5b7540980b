package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Echo packets (RFC 5881 section 4) carry a local format: ours is a magic
// word, the sending session's discriminator and a sequence number. They are
// sent to our own address through the peer's link-layer address, so the peer's
// forwarding plane (not its BFD) returns them to us.
const (
	echoMagic      = 0x454c4245 // "ELBE"
	echoPayloadLen = 16
)

func echoPayload(discr uint32, seq uint64) []byte {
	b := make([]byte, echoPayloadLen)
	binary.BigEndian.PutUint32(b, echoMagic)
	binary.BigEndian.PutUint32(b[4:], discr)
	binary.BigEndian.PutUint64(b[8:], seq)
	return b
}

// parseEcho returns the discriminator of one of our echo packets.
func parseEcho(b []byte) (uint32, bool) {
	if len(b) < echoPayloadLen || binary.BigEndian.Uint32(b) != echoMagic {
		return 0, false
	}
	d := binary.BigEndian.Uint32(b[4:])
	return d, d != 0
}

func (t udpTransport) echoPort() int {
	if t.port != 0 {
		return t.port + 1
	}
	return EchoPort
}

func (t udpTransport) listenEcho(local netip.Addr, deliver func(b []byte, src netip.Addr)) (io.Closer, error) {
	conn, err := t.listenUDP(local, t.echoPort())
	if err != nil {
		return nil, fmt.Errorf("listen echo %s: %w", local, err)
	}
	l := &udpListener{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		buf := make([]byte, 512)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			deliver(buf[:n], src.Addr().Unmap())
		}
	}()
	return l, nil
}

// echoSender sends IPv4 echo packets from local to local through the peer's
// MAC address on an AF_PACKET socket.
type echoSender struct {
	mu      sync.Mutex // send runs off the session lock, from timer and receive paths
	fd      int
	to      unix.SockaddrLinklayer
	local   netip.Addr
	srcPort uint16
	dstPort uint16
	id      uint16
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (t udpTransport) dialEcho(local netip.Addr, srcPort uint16, peer netip.Addr) (sender, error) {
	if !local.Is4() {
		return nil, errors.New("echo: IPv4 only")
	}
	s := &echoSender{fd: -1, local: local, srcPort: srcPort, dstPort: uint16(t.echoPort())}
	err := t.inNamespace(func() error {
		link, mac, err := neighbor(local, peer)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return fmt.Errorf("echo: packet socket: %w", err)
		}
		s.fd = fd
		s.to = unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: link, Halen: uint8(len(mac))}
		copy(s.to.Addr[:], mac)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// neighbor finds the interface that holds local and the peer's MAC address
// in the kernel's neighbour table (filled by the control session's traffic).
func neighbor(local, peer netip.Addr) (int, net.HardwareAddr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, nil, fmt.Errorf("echo: interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); !ok || ip.Unmap() != local {
				continue
			}
			neighs, err := netlink.NeighList(ifc.Index, netlink.FAMILY_V4)
			if err != nil {
				return 0, nil, fmt.Errorf("echo: neighbours of %s: %w", ifc.Name, err)
			}
			for _, n := range neighs {
				ip, ok := netip.AddrFromSlice(n.IP)
				if !ok || ip.Unmap() != peer || len(n.HardwareAddr) != 6 {
					continue
				}
				if n.State&(netlink.NUD_FAILED|netlink.NUD_INCOMPLETE) != 0 {
					continue
				}
				return ifc.Index, n.HardwareAddr, nil
			}
			return 0, nil, fmt.Errorf("echo: no link-layer address for %s on %s yet", peer, ifc.Name)
		}
	}
	return 0, nil, fmt.Errorf("echo: no interface holds %s", local)
}

func (s *echoSender) send(payload []byte) error {
	const ipLen, udpLen = 20, 8
	total := ipLen + udpLen + len(payload)
	b := make([]byte, total)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	s.id++
	b[0] = 0x45
	b[1] = 0xc0 // DSCP CS6
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], s.id)
	b[6] = 0x40 // don't fragment
	b[8] = SingleHopTTL
	b[9] = unix.IPPROTO_UDP
	src := s.local.As4()
	copy(b[12:16], src[:])
	copy(b[16:20], src[:])
	binary.BigEndian.PutUint16(b[10:], ipChecksum(b[:ipLen]))
	binary.BigEndian.PutUint16(b[20:], s.srcPort)
	binary.BigEndian.PutUint16(b[22:], s.dstPort)
	binary.BigEndian.PutUint16(b[24:], uint16(udpLen+len(payload)))
	// UDP checksum 0: none, allowed for IPv4.
	copy(b[28:], payload)
	return unix.Sendto(s.fd, b, 0, &s.to)
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func (s *echoSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}
