package bfd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// RFC 5881 constants.
const (
	// ControlPort is the UDP destination port of single-hop control packets.
	ControlPort = 3784
	// EchoPort is the UDP port of single-hop echo packets (echo is not yet implemented).
	EchoPort = 3785
	// SourcePortMin and SourcePortMax bound the per-session source port.
	SourcePortMin = 49152
	SourcePortMax = 65535
	// SingleHopTTL is the TTL sent, and the only TTL accepted, on single-hop sessions.
	SingleHopTTL = 255
)

// deliverFunc receives one datagram; b is only valid during the call.
// ttl is -1 when the kernel did not report it.
type deliverFunc func(b []byte, src netip.Addr, ttl int)

// transport abstracts sockets so the Manager can run over an in-memory
// network in tests.
type transport interface {
	// listen receives control packets addressed to local; the returned
	// closer stops the receive loop and waits for it.
	listen(local netip.Addr, deliver deliverFunc) (io.Closer, error)
	// dial opens a session's send socket from local:srcPort to peer.
	dial(local netip.Addr, srcPort uint16, peer netip.Addr) (sender, error)
	// listenEcho receives our own echo packets coming back to local.
	listenEcho(local netip.Addr, deliver func(b []byte, src netip.Addr)) (io.Closer, error)
	// dialEcho opens a session's echo sender (packets to local via peer).
	dialEcho(local netip.Addr, srcPort uint16, peer netip.Addr) (sender, error)
}

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

func (t udpTransport) listen(local netip.Addr, deliver deliverFunc) (io.Closer, error) {
	port := t.port
	if port == 0 {
		port = ControlPort
	}
	conn, err := t.listenUDP(local, port)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", netip.AddrPortFrom(local, uint16(port)), err)
	}
	l := &udpListener{conn: conn, done: make(chan struct{})}
	var read func(b []byte) (int, int, net.Addr, error)
	if local.Is4() {
		pc := ipv4.NewPacketConn(conn)
		if err := pc.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("listen %s: enable IP_RECVTTL: %w", local, err)
		}
		read = func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := pc.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.TTL
			}
			return n, ttl, src, err
		}
	} else {
		pc := ipv6.NewPacketConn(conn)
		if err := pc.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("listen %s: enable IPV6_RECVHOPLIMIT: %w", local, err)
		}
		read = func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := pc.ReadFrom(b)
			ttl := -1
			if cm != nil {
				ttl = cm.HopLimit
			}
			return n, ttl, src, err
		}
	}
	go func() {
		defer close(l.done)
		buf := make([]byte, maxControlPacketLen+1)
		for {
			n, ttl, src, err := read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ICMP-induced errors; the socket stays usable
			}
			ua, ok := src.(*net.UDPAddr)
			if !ok {
				continue
			}
			addr, ok := netip.AddrFromSlice(ua.IP)
			if !ok {
				continue
			}
			deliver(buf[:n], addr.Unmap(), ttl)
		}
	}()
	return l, nil
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

func (t udpTransport) dial(local netip.Addr, srcPort uint16, peer netip.Addr) (sender, error) {
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
	port := t.port
	if port == 0 {
		port = ControlPort
	}
	return &udpSender{conn: conn, dst: netip.AddrPortFrom(peer, uint16(port))}, nil
}
