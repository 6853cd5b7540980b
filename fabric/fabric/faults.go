package fabric

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// FaultKind names a fault the fabric can inject.
type FaultKind string

// Faults. Node faults take a node name as target, FaultToRDown a ToR name.
const (
	// FaultNodeDown is a hard node failure: the node's links (the segment's and,
	// with an L2 segment, its L2 interface; Fault.Link picks one) go down on the
	// node side, so the node falls silent (no FIN, no NOTIFICATION, no BFD, no
	// ARP) while its bridge ports stay configured. Repair brings them up.
	FaultNodeDown FaultKind = "node-down"
	// FaultNodeFreeze stops every process in the node's namespace with SIGSTOP (a
	// hung host: the kernel still answers TCP, the daemons are silent). Repair sends
	// SIGCONT.
	FaultNodeFreeze FaultKind = "node-freeze"
	// FaultNodeDrain is a graceful drain: every ToR administratively shuts its session
	// to the node down (NOTIFICATION Cease), withdrawing the node's routes at once.
	// Repair re-enables the sessions.
	FaultNodeDrain FaultKind = "node-drain"
	// FaultLinkFlap takes the node's links (as FaultNodeDown) down for Duration
	// (default 1s) and brings them up again; Fault returns after the flap.
	// Repair brings them up.
	FaultLinkFlap FaultKind = "link-flap"
	// FaultToRDown fails a ToR: its router process is frozen (SIGSTOP) and its segment
	// link is set down, so it neither speaks BGP/BFD nor forwards. Repair undoes both.
	FaultToRDown FaultKind = "tor-down"
	// FaultToRRestart restarts a ToR's router process gracefully (SIGTERM: BGP
	// NOTIFICATION, BFD AdminDown) and starts it again with the same
	// configuration; Fault returns once the new process answers. Its RIB history
	// starts afresh. Repair does nothing.
	FaultToRRestart FaultKind = "tor-restart"
	// FaultBFDAdminDown makes the ToRs (Fault.ToR, or every ToR that runs BFD
	// with the node) shut their BFD session to the node administratively: the
	// node receives AdminDown, which RFC 5882 section 3.2 says is no path
	// failure, so BGP must stay up. Repair enables the sessions again.
	FaultBFDAdminDown FaultKind = "bfd-admin-down"
	// FaultBFDFlap mutes the BFD transmission of the ToRs (Fault.ToR, or every
	// ToR that runs BFD with the node) towards the node for Duration (default
	// 1.5s, longer than a 300 ms x 3 detection time) and unmutes it: the node
	// sees a one-way path failure and brings its session Down; Fault returns
	// after the flap. Repair unmutes.
	FaultBFDFlap FaultKind = "bfd-flap"
)

// FaultKinds lists every fault kind.
var FaultKinds = []FaultKind{FaultNodeDown, FaultNodeFreeze, FaultNodeDrain, FaultLinkFlap, FaultToRDown,
	FaultToRRestart, FaultBFDAdminDown, FaultBFDFlap}

// Fault is one fault to inject or repair.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Target is the node (or, for FaultToRDown and FaultToRRestart, the ToR) name.
	Target string `json:"target"`
	// ToR limits the BFD faults to one ToR (empty: every ToR that runs BFD
	// with the node).
	ToR string `json:"tor,omitempty"`
	// Duration is the down time of FaultLinkFlap and FaultBFDFlap.
	Duration time.Duration `json:"duration,omitempty"`
	// Link limits FaultNodeDown and FaultLinkFlap to one of the node's
	// links: LinkSegment (the BGP segment's) or LinkL2 (its L2 interface).
	// Empty: every link, the whole node cut off.
	Link string `json:"link,omitempty"`
}

// The links of a node a fault can name (Fault.Link).
const (
	LinkSegment = "segment"
	LinkL2      = "l2"
)

// links are the interfaces of the fault's node it takes down: both with an
// L2 segment (unless Link names one), else the segment's.
func (f *Fabric) links(flt Fault) ([]string, error) {
	l2 := f.state.Topology.L2 != nil
	switch flt.Link {
	case "":
		if l2 {
			return []string{SegmentInterface, L2Interface}, nil
		}
		return []string{SegmentInterface}, nil
	case LinkSegment:
		return []string{SegmentInterface}, nil
	case LinkL2:
		if !l2 {
			return nil, fmt.Errorf("fault %s %s: link %q: the topology has no l2 segment", flt.Kind, flt.Target, flt.Link)
		}
		return []string{L2Interface}, nil
	}
	return nil, fmt.Errorf("fault %s %s: link %q is neither %q nor %q", flt.Kind, flt.Target, flt.Link, LinkSegment, LinkL2)
}

// setLinks sets the fault's links up or down.
func (f *Fabric) setLinks(flt Fault, ns string, up bool) error {
	links, err := f.links(flt)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := netns.SetLinkUp(ns, l, up); err != nil {
			return err
		}
	}
	return nil
}

func (f *Fabric) target(flt Fault) (ns string, err error) {
	switch flt.Kind {
	case FaultToRDown, FaultToRRestart:
		if _, ok := f.state.Topology.ToR(flt.Target); !ok {
			return "", fmt.Errorf("fault %s: %q is not a ToR", flt.Kind, flt.Target)
		}
	case FaultNodeDown, FaultNodeFreeze, FaultNodeDrain, FaultLinkFlap, FaultBFDAdminDown, FaultBFDFlap:
		if _, ok := f.state.Topology.Node(flt.Target); !ok {
			return "", fmt.Errorf("fault %s: %q is not a node", flt.Kind, flt.Target)
		}
		if flt.ToR != "" {
			if _, ok := f.state.Topology.ToR(flt.ToR); !ok {
				return "", fmt.Errorf("fault %s: %q is not a ToR", flt.Kind, flt.ToR)
			}
		}
	default:
		return "", fmt.Errorf("unknown fault kind %q (want one of %v)", flt.Kind, FaultKinds)
	}
	if flt.Link != "" && flt.Kind != FaultNodeDown && flt.Kind != FaultLinkFlap {
		return "", fmt.Errorf("fault %s: only %s and %s take a link", flt.Kind, FaultNodeDown, FaultLinkFlap)
	}
	if _, err := f.links(flt); err != nil {
		return "", err
	}
	return f.NetNS(flt.Target), nil
}

// FaultEvent records when a fault was injected or repaired.
type FaultEvent struct {
	// At is when the fault took (or stopped taking) effect: after the link changed,
	// after the processes were stopped; for link-flap, when the link went down.
	At     time.Time `json:"at"`
	Action string    `json:"action"` // "inject" or "repair"
	Fault  Fault     `json:"fault"`
}

// FaultLog returns every fault injected or repaired in this instance (by any process),
// oldest first.
func (f *Fabric) FaultLog() []FaultEvent {
	f.refresh()
	return slices.Clone(f.state.Faults)
}

func (f *Fabric) recordFault(action string, flt Fault, at time.Time) error {
	return f.update(func(s *State) { s.Faults = append(s.Faults, FaultEvent{At: at, Action: action, Fault: flt}) })
}

// Fault injects a fault and records it in the fault log.
func (f *Fabric) Fault(ctx context.Context, flt Fault) error {
	var at time.Time
	if err := f.inject(ctx, flt, &at); err != nil {
		return err
	}
	return f.recordFault("inject", flt, at)
}

func (f *Fabric) inject(ctx context.Context, flt Fault, at *time.Time) (err error) {
	ns, err := f.target(flt)
	if err != nil {
		return err
	}
	f.log.Info("inject fault", "kind", flt.Kind, "target", flt.Target, "link", flt.Link)
	defer func() {
		if at.IsZero() {
			*at = time.Now()
		}
	}()
	switch flt.Kind {
	case FaultNodeDown:
		return f.setLinks(flt, ns, false)
	case FaultNodeFreeze:
		pids, err := proc.SignalInNetNS(ns, syscall.SIGSTOP)
		if err == nil && len(pids) == 0 {
			return fmt.Errorf("fault %s %s: no process runs in %s", flt.Kind, flt.Target, ns)
		}
		if err != nil {
			return err
		}
		return waitStopped(ctx, pids...)
	case FaultNodeDrain:
		return f.setNodeSessions(ctx, flt.Target, false)
	case FaultLinkFlap:
		d := flt.Duration
		if d <= 0 {
			d = time.Second
		}
		if err := f.setLinks(flt, ns, false); err != nil {
			return err
		}
		*at = time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		if err := f.setLinks(flt, ns, true); err != nil {
			return err
		}
		return f.restoreNodeLinks(flt, ns)
	case FaultToRDown:
		f.refresh()
		p := f.state.Routers[flt.Target]
		if !p.Alive() {
			return fmt.Errorf("fault %s %s: router process is not running", flt.Kind, flt.Target)
		}
		if err := syscall.Kill(p.PID, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("fault %s %s: %w", flt.Kind, flt.Target, err)
		}
		if err := netns.SetLinkUp(ns, SegmentInterface, false); err != nil {
			return err
		}
		return waitStopped(ctx, p.PID)
	case FaultToRRestart:
		return f.restartRouter(ctx, flt.Target, at)
	case FaultBFDAdminDown:
		return f.bfdSessions(ctx, flt, func(c *control.Client, node netip.Addr) error { return c.SetBFDAdmin(ctx, node, false) })
	case FaultBFDFlap:
		d := flt.Duration
		if d <= 0 {
			d = 1500 * time.Millisecond
		}
		mute := func(muted bool) error {
			return f.bfdSessions(ctx, flt, func(c *control.Client, node netip.Addr) error { return c.MuteBFD(ctx, node, muted) })
		}
		if err := mute(true); err != nil {
			return err
		}
		*at = time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return mute(false)
	}
	return nil
}

// bfdSessions runs op on every ToR the fault names for the node's address.
func (f *Fabric) bfdSessions(ctx context.Context, flt Fault, op func(c *control.Client, node netip.Addr) error) error {
	n, _ := f.state.Topology.Node(flt.Target)
	var tors []string
	for _, r := range f.state.Topology.ToRs {
		if (flt.ToR == "" || flt.ToR == r.Name) && n.BFDWith(r.Name) {
			tors = append(tors, r.Name)
		}
	}
	if len(tors) == 0 {
		return fmt.Errorf("fault %s: %s runs BFD with no ToR named by the fault", flt.Kind, flt.Target)
	}
	var errs []error
	for _, tor := range tors {
		errs = append(errs, f.withRouter(tor, func(c *control.Client) error { return op(c, n.Address) }))
	}
	return errors.Join(errs...)
}

// restartRouter stops a router process gracefully and starts it again with
// its configuration; at is set when the new process answers.
func (f *Fabric) restartRouter(ctx context.Context, tor string, at *time.Time) error {
	f.refresh()
	p := f.state.Routers[tor]
	stopProcs(ctx, []Proc{p})
	for deadline := time.Now().Add(2 * time.Second); p.Alive() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // a killed process lingers until reaped
	}
	if p.Alive() {
		return fmt.Errorf("restart %s: router process %d did not stop", tor, p.PID)
	}
	np, err := f.spawn(f.state.NetNS[tor], p.Log, "router", "--config", p.Config)
	if err != nil {
		return fmt.Errorf("restart %s: %w", tor, err)
	}
	np.Socket, np.Config = p.Socket, p.Config
	if err := f.update(func(s *State) { s.Routers[tor] = np }); err != nil {
		return err
	}
	c := control.NewClient(np.Socket)
	defer c.Close()
	if err := waitHealthy(ctx, c, np, 15*time.Second); err != nil {
		return fmt.Errorf("restart %s: %w (log: %s)", tor, err, np.Log)
	}
	*at = time.Now()
	return nil
}

// Repair undoes a fault and records it in the fault log.
func (f *Fabric) Repair(ctx context.Context, flt Fault) error {
	if err := f.repair(ctx, flt); err != nil {
		return err
	}
	return f.recordFault("repair", flt, time.Now())
}

func (f *Fabric) repair(ctx context.Context, flt Fault) error {
	ns, err := f.target(flt)
	if err != nil {
		return err
	}
	f.log.Info("repair fault", "kind", flt.Kind, "target", flt.Target, "link", flt.Link)
	switch flt.Kind {
	case FaultNodeDown, FaultLinkFlap:
		if err := f.setLinks(flt, ns, true); err != nil {
			return err
		}
		return f.restoreNodeLinks(flt, ns)
	case FaultNodeFreeze:
		_, err := proc.SignalInNetNS(ns, syscall.SIGCONT)
		return err
	case FaultNodeDrain:
		return f.setNodeSessions(ctx, flt.Target, true)
	case FaultBFDAdminDown:
		return f.bfdSessions(ctx, flt, func(c *control.Client, node netip.Addr) error { return c.SetBFDAdmin(ctx, node, true) })
	case FaultBFDFlap:
		return f.bfdSessions(ctx, flt, func(c *control.Client, node netip.Addr) error { return c.MuteBFD(ctx, node, false) })
	case FaultToRRestart:
		return nil
	case FaultToRDown:
		f.refresh()
		if err := netns.SetLinkUp(ns, SegmentInterface, true); err != nil {
			return err
		}
		if r, ok := f.state.Topology.ToR(flt.Target); ok && r.Address6.IsValid() {
			// The kernel flushed the IPv6 address with the link.
			if err := netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(r.Address6, f.state.Topology.Segment6.Bits())); err != nil {
				return err
			}
		}
		if p := f.state.Routers[flt.Target]; p.Alive() {
			return syscall.Kill(p.PID, syscall.SIGCONT)
		}
		return fmt.Errorf("repair %s %s: router process is gone", flt.Kind, flt.Target)
	}
	return nil
}

// restoreNodeLink gives a node whose segment link came back up what the
// kernel took with the link: its IPv6 address (addresses of a link that goes
// down are flushed unless keep_addr_on_down) and its routes back to the
// clients (a route through a link that goes down is removed), as a host's
// network configuration would on link up. Both writes replace, so a repair
// of a link that kept them changes nothing.
func (f *Fabric) restoreNodeLink(node, ns string) error {
	n, ok := f.state.Topology.Node(node)
	if !ok {
		return nil
	}
	if n.Address6.IsValid() {
		if err := netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(n.Address6, f.state.Topology.Segment6.Bits())); err != nil {
			return err
		}
	}
	return f.nodeRoutes(ns)
}

// restoreNodeLinks restores what the kernel took with each link of the
// fault (restoreNodeLink, restoreL2Link).
func (f *Fabric) restoreNodeLinks(flt Fault, ns string) error {
	links, err := f.links(flt)
	if err != nil {
		return err
	}
	for _, l := range links {
		restore := f.restoreNodeLink
		if l == L2Interface {
			restore = f.restoreL2Link
		}
		if err := restore(flt.Target, ns); err != nil {
			return err
		}
	}
	return nil
}

// waitStopped returns once the processes are stopped (at most 5 s).
func waitStopped(ctx context.Context, pids ...int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return proc.WaitStopped(ctx, pids...)
}

func (f *Fabric) setNodeSessions(ctx context.Context, node string, enable bool) error {
	n, _ := f.state.Topology.Node(node)
	var errs []error
	for _, r := range f.state.Topology.ToRs {
		errs = append(errs, f.withRouter(r.Name, func(c *control.Client) error {
			if enable {
				return c.EnableNeighbor(ctx, n.Address)
			}
			return c.DisableNeighbor(ctx, n.Address, "drain "+node)
		}))
	}
	return errors.Join(errs...)
}
