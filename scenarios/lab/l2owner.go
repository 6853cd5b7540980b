package lab

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

var (
	_ backend.L2AnyOwner  = Backend{}
	_ backend.L2Exclusive = Backend{}
)

// l2ExclusiveARP is how often the lab asks, on the L2 segment, who has an
// address an l2 expectation waited for (L2Exclusive).
const l2ExclusiveARP = 20 * time.Millisecond

// WaitL2OwnerOf implements backend.L2AnyOwner. From the first call about
// an IPv4 address on, the lab also asks who has it every 20 ms
// (L2Exclusive).
func (b Backend) WaitL2OwnerOf(ctx context.Context, ip netip.Addr, nodes []string, since time.Time, flush bool) (string, time.Time, error) {
	if ip.Is4() {
		if err := b.watchARP(ip); err != nil {
			return "", time.Time{}, err
		}
	}
	node, at, err := b.l2Observer().WaitL2OwnerOf(ctx, ip, nodes, since, flush)
	if err != nil {
		return node, at, fmt.Errorf("lab: %w", err)
	}
	return node, at, nil
}

// L2Exclusive implements backend.L2Exclusive: the requests for ip the
// lab's ARP watch saw answered by two nodes, and the L2 client's entry
// changing MAC more than once, since since.
func (b Backend) L2Exclusive(_ context.Context, ip netip.Addr, since time.Time) ([]string, error) {
	b.arpMu.Lock()
	w := b.arpWatch
	b.arpMu.Unlock()
	var from time.Time
	ok := false
	if w != nil {
		from, ok = w.WatchedSince(ip)
	}
	if !ok || from.After(since) {
		return nil, fmt.Errorf("lab: %v was not watched since %s (the lab asks who has an address from the first l2 expectation about it on: expect it before the action step)", ip, since.Format("15:04:05.000"))
	}
	answers, err := w.Answers()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range DoubleAnswers(answers, since) {
		if d.IP == ip {
			out = append(out, d.String())
		}
	}
	flaps, err := b.l2Observer().L2Flaps(ip, since)
	return append(out, flaps...), err
}

// watchARP has the lab's ARP watch ask who has ip, starting the watch on
// first use.
func (l *Lab) watchARP(ip netip.Addr) error {
	l.arpMu.Lock()
	defer l.arpMu.Unlock()
	if l.arpWatch == nil {
		w, err := l.WatchARP(nil, l2ExclusiveARP)
		if err != nil {
			return err
		}
		l.arpWatch = w
	}
	return l.arpWatch.Add(ip)
}

func (l *Lab) closeARPWatch() {
	l.arpMu.Lock()
	defer l.arpMu.Unlock()
	if l.arpWatch != nil {
		_ = l.arpWatch.Close()
		l.arpWatch = nil
	}
}
