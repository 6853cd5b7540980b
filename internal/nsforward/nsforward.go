// Package nsforward lets processes inside a network namespace reach a TCP
// service on the host's loopback (the test apiserver) without giving the
// namespace any route to the host: it listens on the same loopback address
// inside the namespace and relays each connection to the host.
package nsforward

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// Forwarder relays connections from inside a namespace to the host. The
// service stays off every routed address, and one address (one kubeconfig)
// works in every namespace.
type Forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	// log holds the latest relayed connections, for a test that fails to
	// show what its process's connections to the host did.
	log []string
}

// logSize bounds Log.
const logSize = 200

// Log lists the latest relayed connections, oldest first: when each was
// accepted, how long the dial to the host took or how it failed, and how
// many bytes went each way before it ended.
func (b *Forwarder) Log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.log...)
}

func (b *Forwarder) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	if len(b.log) > logSize {
		b.log = b.log[len(b.log)-logSize:]
	}
}

// Start listens on addr (e.g. "127.0.0.1:6443") inside the named network
// namespace and relays each connection to addr in the caller's namespace.
func Start(name, addr string) (*Forwarder, error) {
	b := &Forwarder{target: addr, conns: map[net.Conn]struct{}{}}
	// The listening socket belongs to the namespace it was created in; the
	// goroutines that serve it may run on any thread.
	err := netns.Do(name, func() error {
		var err error
		b.ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forwarding %s into netns %s: %w", addr, name, err)
	}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

func (b *Forwarder) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.forward(c)
	}
}

func (b *Forwarder) track(c net.Conn, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if add {
		if b.closed {
			return false
		}
		b.conns[c] = struct{}{}
	} else {
		delete(b.conns, c)
	}
	return true
}

func (b *Forwarder) forward(in net.Conn) {
	defer b.wg.Done()
	defer in.Close()
	from := in.RemoteAddr().String()
	start := time.Now()
	out, err := net.Dial("tcp", b.target) // from the host's namespace
	if err != nil {
		b.note("%s: dial %s failed after %v: %v", from, b.target, time.Since(start).Round(time.Millisecond), err)
		return
	}
	defer out.Close()
	dialed := time.Since(start)
	if !b.track(in, true) || !b.track(out, true) {
		return
	}
	defer b.track(in, false)
	defer b.track(out, false)
	var up, down int64
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, n *int64) {
		*n, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in, &up)
	go pipe(in, out, &down)
	<-done
	<-done
	b.note("%s via %s: dialled in %v, %d bytes up, %d down, %v in all", from, out.LocalAddr(),
		dialed.Round(time.Millisecond), up, down, time.Since(start).Round(time.Millisecond))
}

// Close stops listening and cuts every forwarded connection.
func (b *Forwarder) Close() error {
	err := b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
