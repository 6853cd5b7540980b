package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/arp"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// arpWatchMAC is the ARP watcher's own MAC: locally administered and none
// of the L2 segment's (02:00 + an IPv4 address), so the nodes' answers to
// it reach the L2 client's port, where the client's kernel drops them as
// another host's, and only the watcher's packet socket reads them.
var arpWatchMAC = net.HardwareAddr{0x02, 0xec, 0x00, 0x00, 0x00, 0x02}

// ARPAnswer is one ARP packet seen on the L2 client's port that claims a
// watched IP: a node's reply to the watcher's request (Round is the
// request it answers, by arrival: the latest sent for that IP), or a
// gratuitous ARP (Round 0).
type ARPAnswer struct {
	At    time.Time
	IP    netip.Addr
	MAC   net.HardwareAddr
	Node  string
	Round uint64
}

// Gratuitous tells whether the answer is a gratuitous ARP, not a reply to
// the watcher.
func (a ARPAnswer) Gratuitous() bool { return a.Round == 0 }

func (a ARPAnswer) String() string {
	what := fmt.Sprintf("reply to request %d", a.Round)
	if a.Gratuitous() {
		what = "gratuitous ARP"
	}
	return fmt.Sprintf("%s %s is-at %v (%s): %s", a.At.Format("15:04:05.000000"), a.IP, a.MAC, a.Node, what)
}

// ARPWatch asks, every interval, who has each watched IP (a broadcast ARP
// request from the L2 client's port, sent as a station nobody knows: its
// own MAC and unused addresses of the L2 subnet, so neither the client's
// kernel nor the nodes' learn anything from it) and records every answer
// and every gratuitous ARP for a watched IP. Every node that answers for an
// IP at the moment of a request replies to it, so two replies to one
// request are two owners at once, whatever the client's neighbour table
// shows. ARP has no request id: the requests take their sender address in
// turn from arpWatchSenders addresses, and a reply goes to the address of
// the request it answers, so a reply that comes late is still counted
// with its own request (unless it is arpWatchSenders requests late).
type ARPWatch struct {
	c        *arp.Client
	senders  []netip.Addr
	interval time.Duration
	nodeOf   func(net.HardwareAddr) string
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	rounds map[netip.Addr]uint64
	since  map[netip.Addr]time.Time
	// asked is the last round of each IP sent from each sender address.
	asked   map[[2]netip.Addr]uint64
	answers []ARPAnswer
	err     error
}

// WatchARP starts an ARPWatch on the L2 segment for ips (IPv4 only), one
// request per IP every interval. Close it.
func (l *Lab) WatchARP(ips []netip.Addr, interval time.Duration) (*ARPWatch, error) {
	topo := l.Fabric.Topology()
	if topo.L2 == nil {
		return nil, errors.New("lab: the topology has no l2 segment")
	}
	senders, err := arpWatchAddrs(l, arpWatchSenders)
	if err != nil {
		return nil, err
	}
	w := &ARPWatch{senders: senders, interval: interval, nodeOf: l.Fabric.L2NodeOfMAC,
		done: make(chan struct{}), rounds: map[netip.Addr]uint64{}, since: map[netip.Addr]time.Time{},
		asked: map[[2]netip.Addr]uint64{}}
	err = netns.Do(l.Fabric.L2ClientNetNS(), func() error {
		ifi, err := net.InterfaceByName(fabric.L2ClientInterface)
		if err != nil {
			return err
		}
		w.c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: ARP watch on the L2 client: %w", err)
	}
	for _, ip := range ips {
		if err := w.Add(ip); err != nil {
			_ = w.c.Close()
			return nil, err
		}
	}
	w.wg.Add(2)
	go w.read()
	go w.ask()
	return w, nil
}

// Add watches ip too, from its next round of requests on.
func (w *ARPWatch) Add(ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("lab: ARP watch: %v is not IPv4", ip)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.rounds[ip]; !ok {
		w.rounds[ip] = 0
		w.since[ip] = time.Now()
	}
	return nil
}

// WatchedSince is when the watch began asking for ip (ok false: never).
func (w *ARPWatch) WatchedSince(ip netip.Addr) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.since[ip]
	return t, ok
}

// arpWatchSenders is how many sender addresses the watch's requests take
// in turn.
const arpWatchSenders = 8

// arpWatchAddrs are n addresses of the L2 subnet that no node, client or
// pool uses: the watcher's sender addresses.
func arpWatchAddrs(l *Lab, n int) ([]netip.Addr, error) {
	topo := l.Fabric.Topology()
	used := map[netip.Addr]bool{topo.L2.ClientAddress: true}
	for _, n := range topo.Nodes {
		used[topo.L2Addr(n)] = true
	}
	s := topo.L2.Subnet.Masked()
	var out []netip.Addr
	for a := s.Addr().Next(); s.Contains(a) && len(out) < n; a = a.Next() {
		if !used[a] && !topo.L2.Pool.Contains(a) {
			out = append(out, a)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("lab: no %d free addresses in the L2 subnet %v for the ARP watch", n, s)
	}
	return out, nil
}

func (w *ARPWatch) ask() {
	defer w.wg.Done()
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.mu.Lock()
		ips := slices.SortedFunc(func(yield func(netip.Addr) bool) {
			for ip := range w.rounds {
				if !yield(ip) {
					return
				}
			}
		}, netip.Addr.Compare)
		w.mu.Unlock()
		for _, ip := range ips {
			w.mu.Lock()
			w.rounds[ip]++
			round := w.rounds[ip]
			sender := w.senders[round%uint64(len(w.senders))]
			w.asked[[2]netip.Addr{ip, sender}] = round
			w.mu.Unlock()
			p, err := arp.NewPacket(arp.OperationRequest, arpWatchMAC, sender, net.HardwareAddr{0, 0, 0, 0, 0, 0}, ip)
			if err == nil {
				err = w.c.WriteTo(p, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			}
			if err != nil {
				select {
				case <-w.done: // closed while sending
				default:
					w.fail(fmt.Errorf("ARP request for %v: %w", ip, err))
				}
				return
			}
		}
		select {
		case <-w.done:
			return
		case <-t.C:
		}
	}
}

func (w *ARPWatch) read() {
	defer w.wg.Done()
	for {
		p, _, err := w.c.Read()
		at := time.Now()
		if err != nil {
			select {
			case <-w.done:
			default:
				w.fail(fmt.Errorf("ARP read: %w", err))
			}
			return
		}
		ip := p.SenderIP.Unmap()
		w.mu.Lock()
		_, watched := w.rounds[ip]
		round, ours := w.asked[[2]netip.Addr{ip, p.TargetIP.Unmap()}]
		w.mu.Unlock()
		if !watched {
			continue
		}
		a := ARPAnswer{At: at, IP: ip, MAC: slices.Clone(p.SenderHardwareAddr)}
		switch {
		case p.Operation == arp.OperationReply && ours && slices.Equal(p.TargetHardwareAddr, arpWatchMAC):
			a.Round = round
		case p.TargetIP.Unmap() == ip: // gratuitous: sender and target the IP
		default:
			continue
		}
		a.Node = w.nodeOf(a.MAC)
		w.mu.Lock()
		w.answers = append(w.answers, a)
		w.mu.Unlock()
	}
}

func (w *ARPWatch) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// Answers returns what was recorded so far, and the watch's failure if it
// failed.
func (w *ARPWatch) Answers() ([]ARPAnswer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.answers), w.err
}

// Requests is how many requests were sent for ip.
func (w *ARPWatch) Requests(ip netip.Addr) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rounds[ip]
}

// Close stops the watch.
func (w *ARPWatch) Close() error {
	select {
	case <-w.done:
		return nil
	default:
	}
	close(w.done)
	err := w.c.Close()
	w.wg.Wait()
	return err
}

// ARPDouble is one request answered by more than one node: At is when
// the second node's answer arrived (a node that answers late, e.g. its
// backlog after a freeze, claims the IP then).
type ARPDouble struct {
	IP    netip.Addr
	Round uint64
	At    time.Time
	Nodes []string
}

func (d ARPDouble) String() string {
	return fmt.Sprintf("%s request %d for %s answered by %v", d.At.Format("15:04:05.000000"), d.Round, d.IP, d.Nodes)
}

// DoubleAnswers lists the requests answered by two or more MACs among
// answers, at or after since: moments of two owners of one IP.
func DoubleAnswers(answers []ARPAnswer, since time.Time) []ARPDouble {
	type key struct {
		ip    netip.Addr
		round uint64
	}
	by := map[key]*ARPDouble{}
	var order []key
	for _, a := range answers {
		if a.Gratuitous() || a.At.Before(since) {
			continue
		}
		k := key{a.IP, a.Round}
		d := by[k]
		if d == nil {
			d = &ARPDouble{IP: a.IP, Round: a.Round}
			by[k] = d
			order = append(order, k)
		}
		name := a.Node
		if name == "" {
			name = a.MAC.String()
		}
		if !slices.Contains(d.Nodes, name) {
			d.Nodes = append(d.Nodes, name)
			if len(d.Nodes) == 2 {
				d.At = a.At
			}
		}
	}
	var out []ARPDouble
	for _, k := range order {
		if d := by[k]; len(d.Nodes) > 1 {
			out = append(out, *d)
		}
	}
	slices.SortStableFunc(out, func(a, b ARPDouble) int { return a.At.Compare(b.At) })
	return out
}
