package responder

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
)

// Defaults of Options.
const (
	DefaultAnnouncements    = 3
	DefaultAnnounceInterval = time.Second
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultResync           = 5 * time.Second
)

// ErrClosed is returned by the setters of a closed Responder.
var ErrClosed = errors.New("l2 responder closed")

// Options configure a Responder. Zero values take the defaults.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics registered
	// Clock drives the announcement repeats, the retries and the resync;
	// nil: real time. Tests pass bfdtest.Clock.
	Clock bfd.Clock
	// Announcements is how many gratuitous ARP / unsolicited Neighbor
	// Advertisement rounds follow the start of answering for an IP: one at
	// once, the others AnnounceInterval apart (a lost one is made good by
	// the next).
	Announcements    int
	AnnounceInterval time.Duration
	// MinBackoff and MaxBackoff bound the delay before an interface that
	// failed to converge (missing, down, a socket refused) is tried again;
	// it doubles with each failure.
	MinBackoff, MaxBackoff time.Duration
	// Resync is how often a converged interface is checked (still there,
	// same index and hardware address, up with carrier); a change reopens
	// its listeners, and the IPs are announced again once it is back.
	Resync time.Duration
	// Enter, when set, runs f where the interfaces are looked up and the
	// sockets opened (tests: in a network namespace); nil: in the calling
	// thread's network namespace.
	Enter func(f func() error) error
	// Gate, when set, is asked before every answer and announcement; false
	// drops it. The caller's fence, checked per packet: a process that was
	// frozen answers nothing from the moment it thaws until its control loop
	// has run (layer 2 mode's dead man's switch).
	Gate func() bool

	sys system // tests: a fake
}

// Responder answers ARP and NDP for the IPs it is given, per interface. All
// methods are safe for concurrent use.
type Responder struct {
	o     Options
	log   *slog.Logger
	clock bfd.Clock
	sys   system
	m     *metrics

	mu     sync.Mutex
	closed bool
	links  map[string]*link

	readers sync.WaitGroup
}

// link is the state of one interface. Fields are guarded by Responder.mu,
// except active (answerMu).
type link struct {
	name string
	want map[netip.Addr]bool

	info   linkInfo // what the open listeners were opened on
	arp    arpConn  // nil: closed
	ndp    ndpConn  // nil: closed
	groups map[netip.Addr]bool

	// answerMu is held for reading while a reader decides on and sends an
	// answer, and for writing while active changes: once an IP leaves
	// active, no answer for it is sent.
	answerMu sync.RWMutex
	active   map[netip.Addr]bool

	announcing map[netip.Addr]*announcement

	failures int
	lastErr  error
	timer    bfd.Timer
}

type announcement struct {
	left  int
	timer bfd.Timer
}

// New returns a Responder answering for nothing.
func New(o Options) *Responder {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = bfd.RealClock()
	}
	if o.Announcements <= 0 {
		o.Announcements = DefaultAnnouncements
	}
	if o.AnnounceInterval <= 0 {
		o.AnnounceInterval = DefaultAnnounceInterval
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.sys == nil && o.Enter != nil {
		o.sys = enterSystem{o.Enter}
	}
	if o.sys == nil {
		o.sys = hostSystem{}
	}
	return &Responder{o: o, log: o.Logger, clock: o.Clock, sys: o.sys, m: newMetrics(o.Registerer), links: map[string]*link{}}
}

// Set makes ips the IPs answered on interface ifName (empty: none; the
// interface's listeners close). IPs added are announced; IPs removed are no
// longer answered when Set returns. It converges at once and returns what
// failed (for logging): the Responder keeps retrying, with backoff, until the
// interface is there and up and its listeners open. An invalid IP is an
// error and left out.
func (r *Responder) Set(ifName string, ips []netip.Addr) error {
	want := map[netip.Addr]bool{}
	var bad []error
	for _, ip := range ips {
		if !ip.IsValid() {
			bad = append(bad, fmt.Errorf("interface %s: invalid IP", ifName))
			continue
		}
		want[ip.Unmap().WithZone("")] = true
	}
	return errors.Join(errors.Join(bad...), r.update(ifName, func(map[netip.Addr]bool) map[netip.Addr]bool { return want }))
}

// Add adds ip to the IPs answered on ifName, as Set.
func (r *Responder) Add(ifName string, ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("interface %s: invalid IP", ifName)
	}
	ip = ip.Unmap().WithZone("")
	return r.update(ifName, func(cur map[netip.Addr]bool) map[netip.Addr]bool {
		next := maps.Clone(cur)
		if next == nil {
			next = map[netip.Addr]bool{}
		}
		next[ip] = true
		return next
	})
}

// Remove stops answering for ip on ifName, as Set.
func (r *Responder) Remove(ifName string, ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	return r.update(ifName, func(cur map[netip.Addr]bool) map[netip.Addr]bool {
		next := maps.Clone(cur)
		delete(next, ip)
		return next
	})
}

func (r *Responder) update(ifName string, f func(map[netip.Addr]bool) map[netip.Addr]bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	l := r.links[ifName]
	var before map[netip.Addr]bool
	if l != nil {
		before = l.want
	}
	want := f(before)
	if l == nil {
		if len(want) == 0 {
			return nil
		}
		l = &link{name: ifName, announcing: map[netip.Addr]*announcement{}}
		r.links[ifName] = l
	}
	l.want = want
	err := r.converge(l)
	for ip := range before {
		if !want[ip] && !r.wantedAnywhere(ip) {
			r.m.forgetIP(ip)
		}
	}
	return err
}

func (r *Responder) wantedAnywhere(ip netip.Addr) bool {
	for _, l := range r.links {
		if l.want[ip] {
			return true
		}
	}
	return false
}

// Answering returns the IPs answered on ifName now, sorted: wanted, and
// their family's listener open (for IPv6, the solicited-node group joined).
func (r *Responder) Answering(ifName string) []netip.Addr {
	r.mu.Lock()
	l := r.links[ifName]
	r.mu.Unlock()
	if l == nil {
		return nil
	}
	l.answerMu.RLock()
	defer l.answerMu.RUnlock()
	out := slices.Collect(maps.Keys(l.active))
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// Pending returns the interfaces whose wanted IPs are not all answered yet,
// with the last error; they are being retried. Empty: converged.
func (r *Responder) Pending() map[string]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]error{}
	for name, l := range r.links {
		if l.lastErr != nil {
			out[name] = l.lastErr
		}
	}
	return out
}

// Close stops answering everywhere, closes every socket and returns once
// every goroutine of the Responder has ended.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, l := range r.links {
		if l.timer != nil {
			l.timer.Stop()
		}
		r.closeAll(l)
	}
	r.links = nil
	r.mu.Unlock()
	r.readers.Wait()
	return nil
}

// converge reconciles l and arms its timer: a retry after backoff if it
// failed, the resync otherwise. The caller holds r.mu.
func (r *Responder) converge(l *link) error {
	err := r.reconcile(l)
	if len(l.want) == 0 {
		if l.timer != nil {
			l.timer.Stop()
		}
		delete(r.links, l.name)
		r.m.forgetInterface(l.name)
		return nil
	}
	delay := r.o.Resync
	if err != nil {
		l.failures++
		r.m.failure(l.name)
		if l.lastErr == nil || l.lastErr.Error() != err.Error() {
			r.log.Warn("l2 responder: interface not converged; retrying", "interface", l.name, "err", err, "failures", l.failures)
		}
		l.lastErr = err
		delay = backoff(l.failures, r.o.MinBackoff, r.o.MaxBackoff)
	} else {
		if l.lastErr != nil {
			r.log.Info("l2 responder: interface converged", "interface", l.name, "failures", l.failures)
		}
		l.failures, l.lastErr = 0, nil
	}
	r.arm(l, delay)
	return err
}

func (r *Responder) arm(l *link, d time.Duration) {
	if l.timer == nil {
		l.timer = r.clock.AfterFunc(d, func() { r.tick(l) })
		return
	}
	l.timer.Reset(d)
}

func (r *Responder) tick(l *link) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.links[l.name] != l {
		return
	}
	_ = r.converge(l)
}

// reconcile opens and closes l's listeners and groups to serve l.want, and
// sets what is answered. The caller holds r.mu.
func (r *Responder) reconcile(l *link) error {
	if len(l.want) == 0 {
		r.closeAll(l)
		return nil
	}
	info, err := r.sys.link(l.name)
	if err != nil {
		r.closeAll(l)
		return fmt.Errorf("interface %s: %w", l.name, err)
	}
	if !info.up {
		r.closeAll(l)
		return fmt.Errorf("interface %s is down or has no carrier", l.name)
	}
	if (l.arp != nil || l.ndp != nil) && !l.info.same(info) {
		r.log.Info("l2 responder: interface changed; reopening", "interface", l.name, "index", info.index, "mac", info.mac.String())
		r.closeAll(l)
	}
	l.info = info
	need4, need6 := false, false
	for ip := range l.want {
		need4 = need4 || ip.Is4()
		need6 = need6 || ip.Is6()
	}
	var errs []error
	switch {
	case need4 && l.arp == nil:
		c, err := r.sys.openARP(l.name, info)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", l.name, err))
			break
		}
		l.arp = c
		r.readers.Add(1)
		go r.readARP(l, c, info.mac)
	case !need4 && l.arp != nil:
		r.closeARP(l)
	}
	switch {
	case need6 && l.ndp == nil:
		c, err := r.sys.openNDP(l.name, info)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", l.name, err))
			break
		}
		l.ndp, l.groups = c, map[netip.Addr]bool{}
		r.readers.Add(1)
		go r.readNDP(l, c, info.mac)
	case !need6 && l.ndp != nil:
		r.closeNDP(l)
	}
	if l.ndp != nil {
		groups := map[netip.Addr]bool{}
		for ip := range l.want {
			if ip.Is6() {
				groups[solicitedNode(ip)] = true
			}
		}
		for g := range groups {
			if !l.groups[g] {
				if err := l.ndp.join(g); err != nil {
					errs = append(errs, fmt.Errorf("interface %s: join %s: %w", l.name, g, err))
					continue
				}
				l.groups[g] = true
			}
		}
		for g := range l.groups {
			if !groups[g] {
				if err := l.ndp.leave(g); err != nil {
					r.log.Debug("l2 responder: leave group", "interface", l.name, "group", g, "err", err)
				}
				delete(l.groups, g)
			}
		}
	}
	active := map[netip.Addr]bool{}
	for ip := range l.want {
		if ip.Is4() && l.arp != nil || ip.Is6() && l.ndp != nil && l.groups[solicitedNode(ip)] {
			active[ip] = true
		}
	}
	r.setActive(l, active)
	return errors.Join(errs...)
}

// setActive makes active what l answers: IPs that leave it are no longer
// answered once it returns and their announcements stop; IPs that join it are
// announced at once and Announcements-1 times more. The caller holds r.mu.
func (r *Responder) setActive(l *link, active map[netip.Addr]bool) {
	l.answerMu.Lock()
	old := l.active
	l.active = active
	l.answerMu.Unlock()
	for ip := range old {
		if !active[ip] {
			r.stopAnnouncing(l, ip)
		}
	}
	for ip := range active {
		if !old[ip] {
			r.startAnnouncing(l, ip)
		}
	}
}

func (r *Responder) startAnnouncing(l *link, ip netip.Addr) {
	r.stopAnnouncing(l, ip)
	r.announce(l, ip)
	if r.o.Announcements <= 1 {
		return
	}
	a := &announcement{left: r.o.Announcements - 1}
	l.announcing[ip] = a
	a.timer = r.clock.AfterFunc(r.o.AnnounceInterval, func() { r.announceAgain(l, ip, a) })
}

func (r *Responder) announceAgain(l *link, ip netip.Addr, a *announcement) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.links[l.name] != l || l.announcing[ip] != a {
		return
	}
	r.announce(l, ip)
	a.left--
	if a.left <= 0 {
		delete(l.announcing, ip)
		return
	}
	a.timer.Reset(r.o.AnnounceInterval)
}

func (r *Responder) stopAnnouncing(l *link, ip netip.Addr) {
	if a := l.announcing[ip]; a != nil {
		a.timer.Stop()
		delete(l.announcing, ip)
	}
}

// announce sends one round of gratuitous packets for ip. A failed send is
// logged; the next round or the clients' own solicitations make up for it.
func (r *Responder) announce(l *link, ip netip.Addr) {
	if !r.open() {
		return
	}
	mac := l.info.mac
	switch {
	case ip.Is4() && l.arp != nil:
		for _, p := range gratuitousARP(ip, mac) {
			if err := l.arp.write(p, ethernet.Broadcast); err != nil {
				r.log.Warn("l2 responder: gratuitous ARP", "interface", l.name, "ip", ip, "err", err)
				continue
			}
			r.m.sentGratuitous(ip)
		}
	case ip.Is6() && l.ndp != nil:
		if err := l.ndp.write(unsolicitedNA(ip, mac), allNodes); err != nil {
			r.log.Warn("l2 responder: unsolicited neighbor advertisement", "interface", l.name, "ip", ip, "err", err)
			return
		}
		r.m.sentGratuitous(ip)
	}
}

// closeAll closes l's listeners and stops answering on it. The caller holds r.mu.
func (r *Responder) closeAll(l *link) {
	r.closeARP(l)
	r.closeNDP(l)
	r.setActive(l, nil)
	for ip := range l.announcing {
		r.stopAnnouncing(l, ip)
	}
}

func (r *Responder) closeARP(l *link) {
	if l.arp != nil {
		_ = l.arp.close()
		l.arp = nil
	}
}

func (r *Responder) closeNDP(l *link) {
	if l.ndp != nil {
		_ = l.ndp.close()
		l.ndp, l.groups = nil, nil
	}
}

func (r *Responder) readARP(l *link, c arpConn, mac net.HardwareAddr) {
	defer r.readers.Done()
	for {
		p, err := c.read()
		if err != nil {
			r.readFailed(l, c, err)
			return
		}
		ip := p.TargetIP.Unmap()
		l.answerMu.RLock()
		if l.active[ip] && r.open() {
			if reply := arpReply(p, mac); reply != nil {
				r.m.request(ip)
				if err := c.write(reply, p.SenderHardwareAddr); err != nil {
					r.log.Debug("l2 responder: ARP reply", "interface", l.name, "ip", ip, "err", err)
				} else {
					r.m.response(ip)
				}
			}
		}
		l.answerMu.RUnlock()
	}
}

func (r *Responder) readNDP(l *link, c ndpConn, mac net.HardwareAddr) {
	defer r.readers.Done()
	for {
		ns, src, err := c.read()
		if err != nil {
			r.readFailed(l, c, err)
			return
		}
		ip := ns.TargetAddress.WithZone("")
		l.answerMu.RLock()
		if l.active[ip] && r.open() {
			if na, dst := ndpReply(ns, src, mac); na != nil {
				r.m.request(ip)
				if err := c.write(na, dst); err != nil {
					r.log.Debug("l2 responder: neighbor advertisement", "interface", l.name, "ip", ip, "err", err)
				} else {
					r.m.response(ip)
				}
			}
		}
		l.answerMu.RUnlock()
	}
}

// open reports whether the caller's gate lets answers out.
func (r *Responder) open() bool { return r.o.Gate == nil || r.o.Gate() }

// readFailed handles a listener whose read failed. If the Responder closed
// it, that is the end; otherwise (the interface went down or away) it is
// closed and the interface retried after backoff.
func (r *Responder) readFailed(l *link, c any, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.links[l.name] != l {
		return
	}
	switch {
	case l.arp != nil && c == any(l.arp):
		r.closeARP(l)
	case l.ndp != nil && c == any(l.ndp):
		r.closeNDP(l)
	default:
		return // closed by reconcile
	}
	err = fmt.Errorf("interface %s: listener failed: %w", l.name, err)
	r.log.Warn("l2 responder: listener failed; reopening", "interface", l.name, "err", err)
	active := map[netip.Addr]bool{}
	l.answerMu.RLock()
	for ip := range l.active {
		if ip.Is4() && l.arp != nil || ip.Is6() && l.ndp != nil {
			active[ip] = true
		}
	}
	l.answerMu.RUnlock()
	r.setActive(l, active)
	l.failures++
	l.lastErr = err
	r.m.failure(l.name)
	r.arm(l, backoff(l.failures, r.o.MinBackoff, r.o.MaxBackoff))
}
