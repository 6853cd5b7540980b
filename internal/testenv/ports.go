package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// FreeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment
// ago, e.g. for a webhook server the test starts next. See FreeLoopbackPorts.
func FreeLoopbackPort() (int, error) {
	ps, err := FreeLoopbackPorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// FreeLoopbackPorts returns n distinct TCP ports that were free on 127.0.0.1
// a moment ago, for servers started next. The ports are picked at random
// outside the kernel's ephemeral range, so between this call and the
// server's listen no outgoing connection and no listener on port 0 can take
// one (a port the kernel handed out as ":0" and that was closed again is the
// next client connection's as much as anybody's: a controller once failed to
// start with "bind: address already in use" that way). This process never
// hands out the same port twice, and no two test processes hand out the
// same port while both run: each port handed out is claimed for the
// process's life with a lock on its byte of one shared file (test packages
// run in parallel, and a port one process picked and released for its
// server to bind was once bound by another's first: its kube-apiserver
// answered the first's readiness probe with an unknown certificate).
func FreeLoopbackPorts(n int) ([]int, error) {
	lo, hi, err := proc.ReadEphemeralPorts()
	if err != nil {
		return nil, err
	}
	givenMu.Lock()
	defer givenMu.Unlock()
	if claims == nil {
		if claims, err = openPortClaims(filepath.Join(os.TempDir(), "ecmplb-test-ports.lock")); err != nil {
			return nil, err
		}
	}
	return pickPorts(n, lo, hi, listenLoopback, claims, given)
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{} // the ports this process handed out
	claims  *portClaims      // opened at the first call, never closed
)

// portClaims claims ports across processes: a write lock on byte p of a
// file, as an open file description lock, so that it conflicts with every
// other opening of the file, in this process or another, and goes when the
// file is closed or the process ends.
type portClaims struct{ f *os.File }

func openPortClaims(path string) (*portClaims, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: port claims: %w", err)
	}
	return &portClaims{f}, nil
}

func (c *portClaims) lock(p int, typ int16) error {
	return unix.FcntlFlock(c.f.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: typ, Whence: 0, Start: int64(p), Len: 1})
}

// claim reports whether p was claimed now (false: another holds it).
func (c *portClaims) claim(p int) bool { return c.lock(p, unix.F_WRLCK) == nil }

func (c *portClaims) release(p int) { _ = c.lock(p, unix.F_UNLCK) }

func (c *portClaims) close() error { return c.f.Close() }

func listenLoopback(port int) (net.Listener, error) {
	return net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// pickPorts picks n distinct ports outside [lo, hi] and above 1023 that are
// not in given, that c can claim and that listen can bind, holding each
// until all are picked, and adds them to given; a claimed port not picked is
// released.
func pickPorts(n, lo, hi int, listen func(int) (net.Listener, error), c *portClaims, given map[int]bool) ([]int, error) {
	var candidates []int
	for p := 1024; p <= 65535; p++ {
		if p < lo || p > hi {
			candidates = append(candidates, p)
		}
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var ports []int
	for _, p := range candidates {
		if len(ports) == n {
			break
		}
		if given[p] || !c.claim(p) {
			continue
		}
		l, err := listen(p)
		if err != nil {
			c.release(p)
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		for _, p := range ports {
			c.release(p)
		}
		return nil, fmt.Errorf("testenv: %d free loopback ports outside the ephemeral range %d-%d wanted, %d found", n, lo, hi, len(ports))
	}
	for _, p := range ports {
		given[p] = true
	}
	return ports, nil
}
