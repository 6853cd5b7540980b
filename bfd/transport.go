package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// RFC 5881 and RFC 5883 constants.
const (
	// ControlPort is the UDP destination port of single-hop control packets.
	ControlPort = 3784
	// MultiHopControlPort is the UDP destination port of multi-hop control
	// packets (RFC 5883 section 5).
	MultiHopControlPort = 4784
	// EchoPort is the UDP port of single-hop echo packets.
	EchoPort = 3785
	// SourcePortMin and SourcePortMax bound the per-session source port.
	SourcePortMin = 49152
	SourcePortMax = 65535
	// SingleHopTTL is the TTL sent (on every session), and the only TTL
	// accepted on single-hop sessions.
	SingleHopTTL = 255
)

// deliverFunc receives one datagram; b is only valid during the call.
// ttl is -1 when the kernel did not report it; age is how long the datagram
// waited in the socket (0 when unknown).
type deliverFunc func(b []byte, src netip.Addr, ttl int, age time.Duration)

// transport abstracts sockets so the Manager can run over an in-memory
// network in tests.
type transport interface {
	// listen receives control packets addressed to local, of single-hop or
	// multi-hop sessions; the returned closer stops the receive loop and
	// waits for it.
	listen(local netip.Addr, multiHop bool, deliver deliverFunc) (io.Closer, error)
	// dial opens a session's send socket from local:srcPort to peer.
	dial(local netip.Addr, srcPort uint16, peer netip.Addr, multiHop bool) (sender, error)
	// listenEcho receives our own echo packets coming back to local.
	listenEcho(local netip.Addr, deliver func(b []byte, src netip.Addr)) (io.Closer, error)
	// dialEcho opens a session's echo sender (packets to local via peer).
	dialEcho(local netip.Addr, srcPort uint16, peer netip.Addr) (sender, error)
}

// inlineEcho is implemented by a transport whose listenEcho and dialEcho
// never block (the in-memory one of the tests): a session then resolves its
// echo path in the step that wants it instead of in a goroutine, so a fake
// clock cannot run timers between the two.
type inlineEcho interface{ echoResolvesInline() }

// sender sends one session's packets.
type sender interface {
	send(b []byte) error
	io.Closer
}

// udpTransport is the real RFC 5881 transport. When nsPath is set, sockets
// are created inside that network namespace (they stay there afterwards).
type udpTransport struct {
	nsPath string
	port   int
}

// inNamespace runs f on an OS thread switched into the namespace.
func (t udpTransport) inNamespace(f func() error) error {
	if t.nsPath == "" {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(t.nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", t.nsPath, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", t.nsPath, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it when this goroutine exits.
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", t.nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func udpAddr(a netip.Addr, port int) *net.UDPAddr {
	return &net.UDPAddr{IP: a.AsSlice(), Port: port, Zone: a.Zone()}
}

func network(a netip.Addr) string {
	if a.Is4() {
		return "udp4"
	}
	return "udp6"
}

func (t udpTransport) listenUDP(a netip.Addr, port int) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := t.inNamespace(func() (err error) {
		conn, err = net.ListenUDP(network(a), udpAddr(a, port))
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

type udpListener struct {
	conn *net.UDPConn
	done chan struct{}
}

func (l *udpListener) Close() error {
	err := l.conn.Close()
	<-l.done
	return err
}

// controlPort is the destination port of single-hop or multi-hop control
// packets.
func (t udpTransport) controlPort(multiHop bool) int {
	switch {
	case t.port != 0 && multiHop:
		return t.port + 2
	case t.port != 0:
		return t.port
	case multiHop:
		return MultiHopControlPort
	}
	return ControlPort
}

func (t udpTransport) listen(local netip.Addr, multiHop bool, deliver deliverFunc) (io.Closer, error) {
	port := t.controlPort(multiHop)
	conn, err := t.listenUDP(local, port)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", netip.AddrPortFrom(local, uint16(port)), err)
	}
	if err := rxOptions(conn, local.Is4()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen %s: %w", local, err)
	}
	l := &udpListener{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		buf := make([]byte, maxControlPacketLen+1)
		oob := make([]byte, 128)
		for {
			n, oobn, _, src, err := conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ICMP-induced errors; the socket stays usable
			}
			ttl, age := parseRxControl(oob[:oobn], time.Now())
			deliver(buf[:n], src.Addr().Unmap(), ttl, age)
		}
	}()
	return l, nil
}

// rxOptions asks the kernel to report each datagram's TTL (hop limit) and
// arrival time.
func rxOptions(conn *net.UDPConn, v4 bool) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v4 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
		}
		if serr != nil {
			serr = fmt.Errorf("enable TTL reporting: %w", serr)
			return
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			serr = fmt.Errorf("enable SO_TIMESTAMPNS: %w", err)
		}
	})
	return errors.Join(err, serr)
}

// parseRxControl reads the TTL (or hop limit; -1 when absent) and how long
// the datagram waited since the kernel received it (0 when unknown) from a
// datagram's control messages.
func parseRxControl(oob []byte, now time.Time) (ttl int, age time.Duration) {
	ttl = -1
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return ttl, 0
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			ttl = int(int32(binary.NativeEndian.Uint32(m.Data)))
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			age = max(now.Sub(time.Unix(ts.Unix())), 0)
		}
	}
	return ttl, age
}

type udpSender struct {
	conn *net.UDPConn
	dst  netip.AddrPort
}

func (s *udpSender) send(b []byte) error {
	_, err := s.conn.WriteToUDPAddrPort(b, s.dst)
	return err
}

func (s *udpSender) Close() error { return s.conn.Close() }

func (t udpTransport) dial(local netip.Addr, srcPort uint16, peer netip.Addr, multiHop bool) (sender, error) {
	conn, err := t.listenUDP(local, int(srcPort))
	if err != nil {
		return nil, err
	}
	if local.Is4() {
		pc := ipv4.NewPacketConn(conn)
		err = errors.Join(pc.SetTTL(SingleHopTTL), pc.SetTOS(0xc0)) // DSCP CS6, network control
	} else {
		pc := ipv6.NewPacketConn(conn)
		err = errors.Join(pc.SetHopLimit(SingleHopTTL), pc.SetTrafficClass(0xc0))
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("socket options: %w", err)
	}
	return &udpSender{conn: conn, dst: netip.AddrPortFrom(peer, uint16(t.controlPort(multiHop)))}, nil
}
