package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/fabric/announcer"
	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/router"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Env carries the global flags.
type Env struct {
	Out, Err  io.Writer
	Output    Output
	StateRoot string
	// Instance selects the fabric; empty picks the only running one.
	Instance string
	Log      *slog.Logger
	Now      func() time.Time
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Open attaches to the selected instance.
func (e Env) Open() (*fabric.Fabric, error) {
	if e.Instance != "" {
		return fabric.Open(e.Instance, e.StateRoot)
	}
	ins, err := fabric.List(e.StateRoot)
	if err != nil {
		return nil, err
	}
	var live []string
	for _, i := range ins {
		if !i.Stale {
			live = append(live, i.Name)
		}
	}
	switch len(live) {
	case 0:
		return nil, errors.New("no running fabric (start one with `fabric up`)")
	case 1:
		return fabric.Open(live[0], e.StateRoot)
	}
	return nil, fmt.Errorf("several fabrics run (%s): choose one with -i", strings.Join(live, ", "))
}

func (e Env) tors(f *fabric.Fabric, tor string) ([]string, error) {
	if tor != "" {
		if _, ok := f.Topology().ToR(tor); !ok {
			return nil, fmt.Errorf("no ToR %q in fabric %s", tor, f.Instance())
		}
		return []string{tor}, nil
	}
	var out []string
	for _, r := range f.Topology().ToRs {
		out = append(out, r.Name)
	}
	return out, nil
}

// LoadTopology reads a topology file, or returns the reference topology for "".
func LoadTopology(path string) (topology.Topology, error) {
	if path == "" {
		t := topology.Default()
		t.SetDefaults()
		return t, nil
	}
	return topology.Load(path)
}

// Up brings a fabric up and prints its instance name. Stale instances are reported,
// and removed first when cleanStale is set.
func Up(ctx context.Context, e Env, topo topology.Topology, opts fabric.Options, cleanStale bool) error {
	ins, err := fabric.List(e.StateRoot)
	if err != nil {
		return err
	}
	for _, i := range ins {
		if !i.Stale {
			continue
		}
		if cleanStale {
			e.Log.Info("removing stale fabric", "instance", i.Name)
			if err := fabric.Destroy(ctx, i.Name, e.StateRoot); err != nil {
				return err
			}
		} else {
			e.Log.Warn("stale fabric found (remove with `fabric down "+i.Name+"` or `fabric up --clean-stale`)", "instance", i.Name)
		}
	}
	opts.StateRoot = e.StateRoot
	f, err := fabric.Up(ctx, topo, opts)
	if err != nil {
		return err
	}
	if e.Output == JSON {
		return writeJSON(e.Out, f.State())
	}
	fmt.Fprintf(e.Out, "fabric %s up (%s)\n", f.Instance(), f.Dir())
	tw := table(e.Out)
	fmt.Fprintln(tw, "Element\tNetns\tAddress")
	for _, r := range topo.ToRs {
		bgp := f.Topology().Timers(r.Name)
		shell := fmt.Sprintf("gobgp: ip netns exec %s gobgp -p %d neighbor", f.NetNS(r.Name), r.GRPCPort)
		if r.RouterFlavour() == topology.FlavourFRR {
			shell = fmt.Sprintf("frr: vtysh -N %s", f.NetNS(r.Name))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (AS %d, hold %s, keepalive %s, %s)\n", r.Name, f.NetNS(r.Name), r.Address, r.ASN,
			bgp.HoldTime.Std(), bgp.KeepaliveInterval.Std(), shell)
	}
	t := f.Topology()
	for _, n := range t.Nodes {
		l2 := ""
		if t.L2 != nil {
			l2 = fmt.Sprintf(", %s %s %s", fabric.L2Interface, t.L2Addr(n), t.L2NodeMAC(n))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (AS %d%s)\n", n.Name, f.NetNS(n.Name), n.Address, n.ASN, l2)
	}
	for _, c := range topo.Clients {
		fmt.Fprintf(tw, "%s\t%s\t%s via %s\n", c.Name, f.NetNS(c.Name), c.Addr(), c.ToR)
	}
	if l := t.L2; l != nil {
		fmt.Fprintf(tw, "%s\t%s\t%s on the L2 segment %s (pool %s)\n", l.Client, f.L2ClientNetNS(), l.ClientAddress, l.Subnet, l.Pool)
	}
	return tw.Flush()
}

// Down removes the named instances; all removes every instance, stale only stale ones;
// with no name and neither flag the only instance is removed.
func Down(ctx context.Context, e Env, names []string, all, stale bool) error {
	if len(names) == 0 && (all || stale) {
		ins, err := fabric.List(e.StateRoot)
		if err != nil {
			return err
		}
		for _, i := range ins {
			if all || i.Stale {
				names = append(names, i.Name)
			}
		}
	} else if len(names) == 0 {
		if e.Instance != "" {
			names = []string{e.Instance}
		} else {
			f, err := e.Open()
			if err != nil {
				return err
			}
			names = []string{f.Instance()}
		}
	}
	var errs []error
	for _, n := range names {
		if err := fabric.Destroy(ctx, n, e.StateRoot); err != nil {
			errs = append(errs, err)
			continue
		}
		if e.Output == Text {
			fmt.Fprintf(e.Out, "fabric %s down\n", n)
		}
	}
	return errors.Join(errs...)
}

// List prints the instances.
func List(e Env) error {
	ins, err := fabric.List(e.StateRoot)
	if err != nil {
		return err
	}
	if e.Output == JSON {
		if ins == nil {
			ins = []fabric.Instance{}
		}
		return writeJSON(e.Out, ins)
	}
	renderInstances(e.Out, ins, e.now())
	return nil
}

// Route prints the ECMP set for a prefix or address on each ToR, with the kernel FIB.
func Route(ctx context.Context, e Env, tor, target string) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	tors, err := e.tors(f, tor)
	if err != nil {
		return err
	}
	var prefix netip.Prefix
	var addr netip.Addr
	if strings.Contains(target, "/") {
		if prefix, err = netip.ParsePrefix(target); err != nil {
			return fmt.Errorf("route %q: %w", target, err)
		}
	} else if addr, err = netip.ParseAddr(target); err != nil {
		return fmt.Errorf("route %q: %w", target, err)
	}
	var res []RouteResult
	for _, t := range tors {
		r, _ := f.Topology().ToR(t)
		rr := RouteResult{ToR: t, Address: r.Address}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var s rib.ECMPSet
		if prefix.IsValid() {
			s, err = f.Route(cctx, t, prefix)
		} else {
			s, err = f.Lookup(cctx, t, addr)
		}
		cancel()
		switch {
		case errors.Is(err, fabric.ErrNoRoute):
		case err != nil:
			rr.Err = err.Error()
		default:
			rr.Route = &s
			rr.Kernel, _ = f.KernelRoute(t, s.Prefix)
		}
		if rr.Kernel == nil {
			rr.Kernel = []netip.Addr{}
		}
		res = append(res, rr)
	}
	if e.Output == JSON {
		return writeJSON(e.Out, res)
	}
	renderRoutes(e.Out, f.Topology().Nodes, res, e.now())
	return nil
}

// perToR runs q for every selected ToR and renders the results.
func perToR[T any](ctx context.Context, e Env, tor string, q func(context.Context, *fabric.Fabric, string) (T, error),
	render func(io.Writer, string, T)) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	tors, err := e.tors(f, tor)
	if err != nil {
		return err
	}
	out := map[string]T{}
	var errs []error
	for _, t := range tors {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		v, err := q(cctx, f, t)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t, err))
			continue
		}
		out[t] = v
	}
	if e.Output == JSON {
		if err := writeJSON(e.Out, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	names := make([]string, 0, len(out))
	for t := range out {
		names = append(names, t)
	}
	sort.Strings(names)
	for i, t := range names {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		render(e.Out, t, out[t])
	}
	return errors.Join(errs...)
}

// RIB prints every ECMP set of each ToR.
func RIB(ctx context.Context, e Env, tor string) error {
	now := e.now()
	return perToR(ctx, e, tor, func(ctx context.Context, f *fabric.Fabric, t string) ([]rib.ECMPSet, error) {
		return f.RIB(ctx, t)
	}, func(w io.Writer, t string, sets []rib.ECMPSet) {
		fmt.Fprintf(w, "%s:\n", t)
		tw := table(w)
		fmt.Fprintln(tw, "Prefix\tNext-hops\tCount\tSince")
		for _, s := range sets {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\n", s.Prefix, addrList(s.NextHops()), len(s.NextHops()), ago(s.Since, now))
		}
		tw.Flush()
	})
}

// Neighbors prints each ToR's BGP summary.
func Neighbors(ctx context.Context, e Env, tor string) error {
	now := e.now()
	return perToR(ctx, e, tor, func(ctx context.Context, f *fabric.Fabric, t string) ([]control.Neighbor, error) {
		return f.Neighbors(ctx, t)
	}, func(w io.Writer, t string, n []control.Neighbor) { renderNeighbors(w, t, n, now) })
}

// BFD prints each ToR's BFD sessions.
func BFD(ctx context.Context, e Env, tor string) error {
	now := e.now()
	return perToR(ctx, e, tor, func(ctx context.Context, f *fabric.Fabric, t string) ([]control.BFDSession, error) {
		return f.BFDPeers(ctx, t)
	}, func(w io.Writer, t string, s []control.BFDSession) { renderBFD(w, t, s, now) })
}

// History prints each ToR's RIB change history after a sequence number, optionally
// only for one prefix.
func History(ctx context.Context, e Env, tor string, after uint64, prefix netip.Prefix) error {
	return perToR(ctx, e, tor, func(ctx context.Context, f *fabric.Fabric, t string) ([]rib.Change, error) {
		h, err := f.History(ctx, t, after)
		if err != nil || !prefix.IsValid() {
			return h, err
		}
		var out []rib.Change
		for _, c := range h {
			if c.Prefix == prefix.Masked() {
				out = append(out, c)
			}
		}
		return out, nil
	}, renderHistory)
}

// Events prints each ToR's neighbor events (BGP and BFD state changes).
func Events(ctx context.Context, e Env, tor string, after uint64) error {
	return perToR(ctx, e, tor, func(ctx context.Context, f *fabric.Fabric, t string) ([]control.Event, error) {
		return f.Events(ctx, t, after)
	}, renderEvents)
}

// Fault injects (repair false) or repairs a fault.
func Fault(ctx context.Context, e Env, flt fabric.Fault, repair bool) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	verb := "injected"
	if repair {
		verb = "repaired"
		err = f.Repair(ctx, flt)
	} else {
		err = f.Fault(ctx, flt)
	}
	if err != nil {
		return err
	}
	at := e.now()
	if log := f.FaultLog(); len(log) > 0 {
		at = log[len(log)-1].At
	}
	if e.Output == JSON {
		return writeJSON(e.Out, map[string]any{"fault": flt, "action": verb, "at": at})
	}
	fmt.Fprintf(e.Out, "%s %s %s at %s\n", verb, flt.Kind, flt.Target, at.UTC().Format("15:04:05.000000Z"))
	return nil
}

// Faults prints the instance's fault log.
func Faults(e Env) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	log := f.FaultLog()
	if e.Output == JSON {
		if log == nil {
			log = []fabric.FaultEvent{}
		}
		return writeJSON(e.Out, log)
	}
	tw := table(e.Out)
	fmt.Fprintln(tw, "Time\tAction\tKind\tTarget")
	for _, ev := range log {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ev.At.UTC().Format("2006-01-02T15:04:05.000000Z"), ev.Action, ev.Fault.Kind, ev.Fault.Target)
	}
	return tw.Flush()
}

// StartAnnouncer starts a test announcer in a node (it keeps running after the CLI
// exits; `fabric down` stops it).
func StartAnnouncer(ctx context.Context, e Env, node string, prefixes []netip.Prefix, bfdProfile string) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	opts := fabric.AnnouncerOptions{Prefixes: prefixes}
	if bfdProfile != "" {
		p, ok := f.Topology().BFDProfiles[bfdProfile]
		if !ok {
			return fmt.Errorf("bfd profile %q is not in the topology", bfdProfile)
		}
		opts.BFD = &p
	}
	a, err := f.StartAnnouncer(ctx, node, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "announcer on %s (pid %d) announcing %v\n", node, a.PID(), prefixes)
	return nil
}

// Flows sends n UDP flows from a client to dst and prints how they spread over the
// nodes. With own, dst's address is put on every node's loopback for the test (and
// removed after); responders run in this process inside the node namespaces.
func Flows(ctx context.Context, e Env, client string, dst netip.AddrPort, n int, own bool) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	for _, node := range f.Topology().Nodes {
		if own {
			if err := f.AddNodeAddress(node.Name, dst.Addr()); err != nil {
				return err
			}
			defer func() { _ = f.DelNodeAddress(node.Name, dst.Addr()) }()
		}
		r, err := f.StartResponder(node.Name, netip.AddrPortFrom(netip.IPv4Unspecified(), dst.Port()))
		if err != nil {
			return err
		}
		defer r.Close()
	}
	counts, err := f.SendFlows(ctx, client, dst, n, 2*time.Second)
	if err != nil {
		return err
	}
	if e.Output == JSON {
		return writeJSON(e.Out, counts)
	}
	tw := table(e.Out)
	fmt.Fprintln(tw, "Node\tFlows")
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		label := k
		if k == "" {
			label = "(no reply)"
		}
		fmt.Fprintf(tw, "%s\t%d\n", label, counts[k])
	}
	return tw.Flush()
}

// AddNode adds a node to the running fabric.
func AddNode(ctx context.Context, e Env, n topology.Node) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	if err := f.AddNode(ctx, n); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "node %s added (%s, netns %s)\n", n.Name, n.Address, f.NodeNetNS(n.Name))
	return nil
}

// RemoveNode removes a node from the running fabric.
func RemoveNode(ctx context.Context, e Env, name string) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	if err := f.RemoveNode(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "node %s removed\n", name)
	return nil
}

// PrintTopology prints the reference topology (with defaults) as YAML.
func PrintTopology(e Env) error {
	t, _ := LoadTopology("")
	b, err := t.Marshal()
	if err != nil {
		return err
	}
	_, err = e.Out.Write(b)
	return err
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// RunRouter is the router process (`fabric router --config FILE`), run inside the
// ToR's namespace; it ends on SIGTERM/SIGINT.
func RunRouter(configPath string, log *slog.Logger) error {
	cfg, err := router.LoadConfig(configPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	if cfg.Flavour == topology.FlavourFRR {
		return router.NewFRR(cfg, log).Run(ctx)
	}
	return router.New(cfg, router.WithLogger(log)).Run(ctx)
}

// RunAnnouncer is the test announcer process (`fabric announce --config FILE`).
func RunAnnouncer(configPath string, log *slog.Logger) error {
	cfg, err := announcer.LoadConfig(configPath)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	return announcer.New(cfg, log).Run(ctx)
}
