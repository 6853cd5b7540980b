package netlab

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
)

// Forwarder accepts TCP connections inside a network namespace and relays them to
// the same address in this process's namespace. It lets a process inside the lab
// reach an API server on the host's loopback without giving the namespace a route
// to the host.
type Forwarder struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	done bool
}

// ForwardIntoNS listens on addr ("127.0.0.1:6443") inside ns and relays each
// connection to addr here.
func ForwardIntoNS(ns, addr string) (*Forwarder, error) {
	ln, err := listenInNS(ns, addr)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln}
	f.wg.Add(1)
	go f.serve(addr)
	return f, nil
}

func listenInNS(ns, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, err
	}
	// The socket belongs to the namespace it was created in, whatever thread uses it later.
	ln, lerr := net.Listen("tcp", addr)
	if err := netns.Set(orig); err != nil {
		// This thread is now in the wrong namespace; never let it run other goroutines.
		panic(fmt.Sprintf("netlab: cannot return to the original netns: %v", err))
	}
	if lerr != nil {
		return nil, fmt.Errorf("listen %s in %s: %w", addr, ns, lerr)
	}
	return ln, nil
}

func (f *Forwarder) serve(addr string) {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// Close stops accepting; open relays end when either side closes.
func (f *Forwarder) Close() error {
	err := f.ln.Close()
	f.wg.Wait()
	return err
}
