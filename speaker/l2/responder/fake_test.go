package responder

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

var errFakeClosed = errors.New("fake conn closed")

// fakeSys is a system whose interfaces and sockets the test controls.
type fakeSys struct {
	mu      sync.Mutex
	links   map[string]linkInfo
	linkAt  []string // "name" per link lookup, in order
	arpErr  error
	ndpErr  error
	joinErr error
	arps    map[string][]*fakeARP
	ndps    map[string][]*fakeNDP
}

func newFakeSys() *fakeSys {
	return &fakeSys{links: map[string]linkInfo{}, arps: map[string][]*fakeARP{}, ndps: map[string][]*fakeNDP{}}
}

func (f *fakeSys) setLink(name string, li linkInfo, present bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if present {
		f.links[name] = li
	} else {
		delete(f.links, name)
	}
}

func (f *fakeSys) link(name string) (linkInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linkAt = append(f.linkAt, name)
	li, ok := f.links[name]
	if !ok {
		return linkInfo{}, errors.New("no such network interface")
	}
	return li, nil
}

func (f *fakeSys) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.linkAt)
}

func (f *fakeSys) openARP(name string, li linkInfo) (arpConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.arpErr != nil {
		return nil, f.arpErr
	}
	c := &fakeARP{in: make(chan *arp.Packet, 16), fail: make(chan error, 1), out: make(chan sentARP, 64), closed: make(chan struct{})}
	f.arps[name] = append(f.arps[name], c)
	return c, nil
}

func (f *fakeSys) openNDP(name string, li linkInfo) (ndpConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ndpErr != nil {
		return nil, f.ndpErr
	}
	c := &fakeNDP{sys: f, in: make(chan fakeNS, 16), fail: make(chan error, 1), out: make(chan sentNDP, 64), closed: make(chan struct{}), groups: map[netip.Addr]bool{}}
	f.ndps[name] = append(f.ndps[name], c)
	return c, nil
}

// arpConns returns the ARP conns opened on name, oldest first.
func (f *fakeSys) arpConns(name string) []*fakeARP {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeARP(nil), f.arps[name]...)
}

func (f *fakeSys) ndpConns(name string) []*fakeNDP {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakeNDP(nil), f.ndps[name]...)
}

type sentARP struct {
	p   *arp.Packet
	dst net.HardwareAddr
}

type fakeARP struct {
	in     chan *arp.Packet
	fail   chan error
	out    chan sentARP
	once   sync.Once
	closed chan struct{}
}

func (c *fakeARP) read() (*arp.Packet, error) {
	select {
	case p := <-c.in:
		return p, nil
	case err := <-c.fail:
		return nil, err
	case <-c.closed:
		return nil, errFakeClosed
	}
}

func (c *fakeARP) write(p *arp.Packet, dst net.HardwareAddr) error {
	select {
	case <-c.closed:
		return errFakeClosed
	default:
	}
	c.out <- sentARP{p, dst}
	return nil
}

func (c *fakeARP) close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *fakeARP) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

type fakeNS struct {
	ns  *ndp.NeighborSolicitation
	src netip.Addr
}

type sentNDP struct {
	m   ndp.Message
	dst netip.Addr
}

type fakeNDP struct {
	sys    *fakeSys
	in     chan fakeNS
	fail   chan error
	out    chan sentNDP
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
	groups map[netip.Addr]bool
}

func (c *fakeNDP) read() (*ndp.NeighborSolicitation, netip.Addr, error) {
	select {
	case m := <-c.in:
		return m.ns, m.src, nil
	case err := <-c.fail:
		return nil, netip.Addr{}, err
	case <-c.closed:
		return nil, netip.Addr{}, errFakeClosed
	}
}

func (c *fakeNDP) write(m ndp.Message, dst netip.Addr) error {
	select {
	case <-c.closed:
		return errFakeClosed
	default:
	}
	c.out <- sentNDP{m, dst}
	return nil
}

func (c *fakeNDP) join(g netip.Addr) error {
	c.sys.mu.Lock()
	err := c.sys.joinErr
	c.sys.mu.Unlock()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups[g] = true
	return nil
}

func (c *fakeNDP) leave(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, g)
	return nil
}

func (c *fakeNDP) joined(g netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[g]
}

func (c *fakeNDP) close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// recv returns the next packet written, or fails t after a timeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s written", what)
		panic("unreachable")
	}
}

// none fails t if anything was written (use after the writes expected are
// taken: the writes of one call happen before it returns).
func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s written: %+v", what, v)
	default:
	}
}

// responderGoroutines counts the goroutines running the Responder's code.
func responderGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "speaker/l2/responder.(*Responder)") {
			n++
		}
	}
	return n
}

// waitNoResponderGoroutines waits until no goroutine runs the Responder's
// code (a reader ends right after its conn is closed), or fails t.
func waitNoResponderGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for responderGoroutines() > 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("responder goroutines left after Close:\n%s", buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}
