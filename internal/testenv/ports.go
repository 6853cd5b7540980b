package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"

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
// hands out the same port twice.
func FreeLoopbackPorts(n int) ([]int, error) {
	lo, hi, err := proc.ReadEphemeralPorts()
	if err != nil {
		return nil, err
	}
	givenMu.Lock()
	defer givenMu.Unlock()
	return pickPorts(n, lo, hi, listenLoopback, given)
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{} // the ports this process handed out
)

func listenLoopback(port int) (net.Listener, error) {
	return net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// pickPorts picks n distinct ports outside [lo, hi] and above 1023 that are
// not in given and that listen can bind, holding each until all are picked,
// and adds them to given.
func pickPorts(n, lo, hi int, listen func(int) (net.Listener, error), given map[int]bool) ([]int, error) {
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
		if given[p] {
			continue
		}
		l, err := listen(p)
		if err != nil {
			continue
		}
		held = append(held, l)
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("testenv: %d free loopback ports outside the ephemeral range %d-%d wanted, %d found", n, lo, hi, len(ports))
	}
	for _, p := range ports {
		given[p] = true
	}
	return ports, nil
}
