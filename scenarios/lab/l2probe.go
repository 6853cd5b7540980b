package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// ProbeAnswer is one answer to a UDPProbe: when it arrived and the node
// that sent it.
type ProbeAnswer struct {
	At   time.Time
	Node string
}

// UDPProbe sends a datagram to a Service IP every interval from the L2
// client, over the L2 segment, and records which node answered each: every
// node owns the IP and answers with its name (as for flows), so the
// answers say, to the interval, which node's MAC the client's traffic goes
// to. Stop it.
type UDPProbe struct {
	conn     net.PacketConn
	dst      netip.AddrPort
	interval time.Duration
	undo     func()
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once

	mu      sync.Mutex
	sent    int
	answers []ProbeAnswer
	err     error
	kick    chan struct{}
}

// StartL2Probe starts a UDPProbe to dst from the L2 client.
func (l *Lab) StartL2Probe(dst netip.AddrPort, interval time.Duration) (*UDPProbe, error) {
	client := l.Fabric.L2Client()
	if client == "" {
		return nil, errors.New("lab: the topology has no l2 segment")
	}
	undo, err := l.prepareDataPlaneProto("udp", dst)
	if err != nil {
		return nil, err
	}
	p := &UDPProbe{dst: dst, interval: interval, undo: undo, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	err = netns.Do(l.Fabric.NetNS(client), func() error {
		network := "udp4"
		if dst.Addr().Is6() {
			network = "udp6"
		}
		var err error
		p.conn, err = net.ListenPacket(network, ":0")
		return err
	})
	if err != nil {
		undo()
		return nil, fmt.Errorf("lab: probe socket on the L2 client: %w", err)
	}
	p.wg.Add(2)
	go p.send()
	go p.read()
	return p, nil
}

func (p *UDPProbe) send() {
	defer p.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	to := net.UDPAddrFromAddrPort(p.dst)
	for {
		// An unresolved neighbour or an unreachable node is no error: the
		// probe's answers say what came back.
		_, _ = p.conn.WriteTo([]byte("probe"), to)
		p.mu.Lock()
		p.sent++
		p.mu.Unlock()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

func (p *UDPProbe) read() {
	defer p.wg.Done()
	buf := make([]byte, 256)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			select {
			case <-p.done:
			default:
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
			}
			return
		}
		p.mu.Lock()
		p.answers = append(p.answers, ProbeAnswer{At: at, Node: string(buf[:n])})
		p.mu.Unlock()
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Answers returns the answers so far and how many datagrams were sent.
func (p *UDPProbe) Answers() ([]ProbeAnswer, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.answers), p.sent
}

// WaitFor waits until ok holds for the answers so far, woken by each new
// answer, for at most timeout or until ctx ends.
func (p *UDPProbe) WaitFor(ctx context.Context, timeout time.Duration, ok func([]ProbeAnswer) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		as, err := slices.Clone(p.answers), p.err
		p.mu.Unlock()
		if ok(as) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("probe to %v: %w", p.dst, err)
		}
		select {
		case <-p.kick:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("probe to %v: not within %v (%d answers)", p.dst, timeout, len(as))
		}
	}
}

// Stop stops sending and reading and undoes the nodes' responders.
func (p *UDPProbe) Stop() {
	p.stopOnce.Do(func() {
		close(p.done)
		_ = p.conn.Close()
		p.wg.Wait()
		p.undo()
	})
}

// firstOther is the first answer at or after since from another node than
// node (ok false: none).
func firstOther(as []ProbeAnswer, node string, since time.Time) (ProbeAnswer, bool) {
	for _, a := range as {
		if !a.At.Before(since) && a.Node != node {
			return a, true
		}
	}
	return ProbeAnswer{}, false
}

// firstFrom is the first answer at or after since from node.
func firstFrom(as []ProbeAnswer, node string, since time.Time) (ProbeAnswer, bool) {
	for _, a := range as {
		if !a.At.Before(since) && a.Node == node {
			return a, true
		}
	}
	return ProbeAnswer{}, false
}

// answerRuns is the sequence of nodes that answered, consecutive answers of
// one node counted once: owner, other, owner for one clean failover and
// return; anything longer is traffic going back and forth between nodes.
func answerRuns(as []ProbeAnswer) []string {
	var out []string
	for _, a := range as {
		if len(out) == 0 || out[len(out)-1] != a.Node {
			out = append(out, a.Node)
		}
	}
	return out
}

// stableRuns is answerRuns without the runs of fewer than minRun answers:
// at a switch, the last answer from the old node can arrive after the
// first from the new one (two nodes' responders, each scheduled in its own
// time), which is no traffic going back.
func stableRuns(as []ProbeAnswer, minRun int) []string {
	type run struct {
		node string
		n    int
	}
	var runs []run
	for _, a := range as {
		if len(runs) == 0 || runs[len(runs)-1].node != a.Node {
			runs = append(runs, run{a.Node, 0})
		}
		runs[len(runs)-1].n++
	}
	var out []string
	for _, r := range runs {
		if r.n >= minRun && (len(out) == 0 || out[len(out)-1] != r.node) {
			out = append(out, r.node)
		}
	}
	return out
}
