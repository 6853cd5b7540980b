package lab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/ecmplb/ecmplb/fabric/netlab"
)

// apiBridge lets processes inside a node's network namespace reach the
// apiserver, which listens on the host's loopback only: it listens on the
// same loopback address and port inside the namespace and forwards each
// connection to the host. The apiserver stays off every routed address, and
// one kubeconfig works in every namespace.
type apiBridge struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newAPIBridge(netns, addr string) (*apiBridge, error) {
	b := &apiBridge{target: addr, conns: map[net.Conn]struct{}{}}
	// The listening socket belongs to the namespace it was created in; the
	// goroutines that serve it may run on any thread.
	err := netlab.Do(netns, func() error {
		var err error
		b.ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("apiserver bridge in %s: %w", netns, err)
	}
	b.wg.Add(1)
	go b.serve()
	return b, nil
}

func (b *apiBridge) serve() {
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

func (b *apiBridge) track(c net.Conn, add bool) bool {
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

func (b *apiBridge) forward(in net.Conn) {
	defer b.wg.Done()
	defer in.Close()
	out, err := net.Dial("tcp", b.target) // from the host's namespace
	if err != nil {
		return
	}
	defer out.Close()
	if !b.track(in, true) || !b.track(out, true) {
		return
	}
	defer b.track(in, false)
	defer b.track(out, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// Close stops listening and cuts every forwarded connection.
func (b *apiBridge) Close() error {
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
