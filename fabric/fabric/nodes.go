package fabric

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// AddNode adds a node to the running fabric: its namespace, segment link, address and
// routes, and a neighbor (with BFD if n.BFDProfile names a topology profile) on every
// ToR (none when the topology has dynamic neighbors and the node no BFD profile: the
// ToRs then accept it through the segment range). Its namespace is NodeNetNS(n.Name) afterwards.
func (f *Fabric) AddNode(ctx context.Context, n topology.Node) error {
	f.refresh()
	topo := f.state.Topology
	topo.Nodes = append(topo.Nodes, n)
	if err := topo.Validate(); err != nil {
		return fmt.Errorf("add node %q: %w", n.Name, err)
	}
	ns := f.state.Switch + "-" + n.Name
	if err := f.update(func(s *State) { s.Topology.Nodes = append(s.Topology.Nodes, n); s.NetNS[n.Name] = ns }); err != nil {
		return err
	}
	if err := f.attach(ctx, ns, portName("n", topo.Segment, n.Address), n.Address, n.Address6); err != nil {
		return errors.Join(err, f.RemoveNode(ctx, n.Name))
	}
	if err := f.nodeRoutes(ns); err != nil {
		return errors.Join(err, f.RemoveNode(ctx, n.Name))
	}
	if topo.L2 != nil {
		if err := f.attachL2(n); err != nil {
			return errors.Join(err, f.RemoveNode(ctx, n.Name))
		}
	}
	cfg := control.NeighborConfig{Name: n.Name, Address: n.Address, ASN: n.ASN}
	if n.BFDProfile != "" {
		p := topo.BFDProfiles[n.BFDProfile]
		cfg.BFD = &p
	}
	for _, r := range topo.ToRs {
		cfg := cfg
		if !n.BFDWith(r.Name) {
			cfg.BFD = nil
		}
		if topo.DynamicNeighbors && cfg.BFD == nil {
			continue // the ToR accepts it through the dynamic-neighbor range
		}
		if err := f.withRouter(r.Name, func(c *control.Client) error { return c.AddNeighbor(ctx, cfg) }); err != nil {
			return errors.Join(fmt.Errorf("add node %q on %s: %w", n.Name, r.Name, err), f.RemoveNode(ctx, n.Name))
		}
	}
	f.log.Info("node added", "node", n.Name, "address", n.Address, "netns", ns)
	return nil
}

// RemoveNode removes a node: its neighbor on every ToR (NOTIFICATION, routes withdrawn
// at once), its announcer and every process in its namespace, and the namespace.
func (f *Fabric) RemoveNode(ctx context.Context, name string) error {
	f.refresh()
	n, ok := f.state.Topology.Node(name)
	if !ok {
		return fmt.Errorf("remove node: no node %q", name)
	}
	var errs []error
	for _, r := range f.state.Topology.ToRs {
		err := f.withRouter(r.Name, func(c *control.Client) error { return c.DeleteNeighbor(ctx, n.Address) })
		if err != nil && !errors.Is(err, control.ErrNotFound) {
			f.log.Info("remove node: delete neighbor", "tor", r.Name, "node", name, "err", err)
		}
	}
	if p, ok := f.state.Announcers[name]; ok {
		stopProcs(ctx, []Proc{p})
	}
	ns := f.state.NetNS[name]
	if netns.Exists(ns) {
		_, _ = proc.SignalInNetNS(ns, syscall.SIGCONT)
		_, _ = proc.SignalInNetNS(ns, syscall.SIGKILL)
		errs = append(errs, netns.Delete(ns))
	}
	errs = append(errs, f.update(func(s *State) {
		s.Topology.Nodes = slices.DeleteFunc(s.Topology.Nodes, func(x topology.Node) bool { return x.Name == name })
		delete(s.NetNS, name)
		delete(s.Announcers, name)
	}))
	return errors.Join(errs...)
}
