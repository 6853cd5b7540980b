// Package fabric brings up and drives a virtual ToR fabric on this machine: one network
// namespace per ToR router, node and client, an L2 segment (a bridge in its own
// namespace), one router process per ToR (GoBGP with multipath, ECMP RIB view with
// history, kernel FIB, BFD; see package router), and fault injection.
//
// Typical use (a lab or a Ginkgo scenario):
//
//	f, err := fabric.Up(ctx, topology.Default(), fabric.Options{Binary: "/path/to/fabric"})
//	defer f.Down(context.Background())
//	// start a speaker in f.NodeNetNS("node1") (ip netns exec NAME ...)
//	set, err := f.WaitForRoute(ctx, "tor1", netip.MustParsePrefix("203.0.113.5/32"), nodes)
//	err = f.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeDown, Target: "node2"})
//	changes, err := f.History(ctx, "tor1", 0)
//
// Everything an instance creates is recorded under /run/ecmplb/fabric/<instance>/, so
// Destroy (and `fabric down`) can clean up after a killed process. Names of namespaces
// are "elb-<instance>-<element>" (the segment's switch namespace is "elb-<instance>"),
// so two instances never collide.
package fabric

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/router"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// SegmentInterface is the name of the segment interface inside every ToR and node
// namespace; ClientInterface the name of a client's link inside its namespace.
const (
	SegmentInterface = "eth0"
	ClientInterface  = "eth0"
	bridgeName       = "br0"
)

// Options tunes Up.
type Options struct {
	// Instance names the instance (1-16 of a-z0-9); empty picks a random one.
	Instance string
	// StateRoot is the parent of the instance directory (default DefaultStateRoot).
	StateRoot string
	// Binary is the `fabric` executable used to run the routers (`fabric router`).
	// Empty: this executable if it is named "fabric", else "fabric" from PATH.
	Binary string
	// Logger receives progress messages (default slog.Default()).
	Logger *slog.Logger
	// StartTimeout bounds the wait for each router to answer (default 15s).
	StartTimeout time.Duration
	// NoFIB disables kernel FIB programming in the routers.
	NoFIB bool
	// ExitWithCaller makes the router (and announcer) processes die with the process
	// that called Up (parent-death signal), so a killed test leaves only a stale
	// instance for `fabric down --stale`. The CLI leaves it off: its fabric outlives it.
	ExitWithCaller bool
	// ExternalSegment names a Linux bridge in the caller's network namespace
	// (the host) to use as the segment instead of a bridge of the fabric's own,
	// e.g. a kind cluster's Docker network (kindconfig.BridgeName). Each ToR's
	// eth0 is then a veth whose host end (named elbt…, see HostLinkName) is
	// enslaved to that bridge. Nothing is routed on the host.
	ExternalSegment string
	// ExternalNodes means the topology's nodes live outside the fabric (e.g.
	// kind node containers on ExternalSegment at the topology's addresses):
	// the fabric creates no namespace, link or route for them, and the ToRs
	// peer with them as with any node. The caller routes their replies to the
	// clients (ClientRoutes).
	ExternalNodes bool
	// ExternalL2 names a Linux bridge in the caller's network namespace to
	// use as the topology's L2 segment, with ExternalNodes: the caller puts
	// the nodes' L2 interfaces on it (with the topology's L2 addresses and
	// MACs), the fabric only its L2 client, by a veth whose host end is
	// named like the ToRs' (HostLinkName).
	ExternalL2 string
}

// Fabric is a running (or attached-to) fabric instance.
type Fabric struct {
	dir        string
	state      State
	log        *slog.Logger
	exitWithMe bool
}

var instanceRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// BuildBinary builds the fabric executable into dir (with the go tool, from the module
// that contains this package) and returns its path, for Options.Binary.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "fabric")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/ecmplb/ecmplb/fabric")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build fabric: %w: %s", err, b)
	}
	return out, nil
}

func resolveBinary(b string) (string, error) {
	if b == "" {
		if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "fabric" {
			return exe, nil
		}
		b = "fabric"
	}
	p, err := exec.LookPath(b)
	if err != nil {
		return "", fmt.Errorf("fabric binary: %w (build it with `go build -o BIN ./fabric` and pass Options.Binary)", err)
	}
	return filepath.Abs(p)
}

// Up creates every namespace, link and address of the topology, starts one router
// process per ToR and waits until every router answers. On error it removes what it
// created.
func Up(ctx context.Context, topo topology.Topology, opts Options) (*Fabric, error) {
	topo.SetDefaults()
	if err := topo.Validate(); err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StateRoot == "" {
		opts.StateRoot = DefaultStateRoot
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 15 * time.Second
	}
	if opts.Instance == "" {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		opts.Instance = hex.EncodeToString(b)
	}
	if !instanceRE.MatchString(opts.Instance) {
		return nil, fmt.Errorf("fabric: instance %q must be 1-16 of a-z0-9", opts.Instance)
	}
	bin, err := resolveBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(opts.StateRoot, opts.Instance)
	if err := os.MkdirAll(opts.StateRoot, 0o755); err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("fabric: instance %q exists (%s); run `fabric down %s` first", opts.Instance, dir, opts.Instance)
		}
		return nil, fmt.Errorf("fabric: %w", err)
	}
	prefix := "elb-" + opts.Instance
	st := State{
		Instance: opts.Instance, Created: time.Now(), Binary: bin, Topology: topo,
		Switch: prefix, NetNS: map[string]string{}, Routers: map[string]Proc{},
	}
	for _, r := range topo.ToRs {
		st.NetNS[r.Name] = prefix + "-" + r.Name
	}
	if !opts.ExternalNodes {
		for _, n := range topo.Nodes {
			st.NetNS[n.Name] = prefix + "-" + n.Name
		}
	}
	if opts.ExternalSegment != "" {
		st.Switch, st.ExternalSegment = "", opts.ExternalSegment
	}
	st.ExternalNodes, st.ExternalL2 = opts.ExternalNodes, opts.ExternalL2
	for _, c := range topo.Clients {
		st.NetNS[c.Name] = prefix + "-" + c.Name
	}
	if topo.L2 != nil {
		st.NetNS[topo.L2.Client] = prefix + "-" + topo.L2.Client
	}
	f := &Fabric{dir: dir, state: st, log: opts.Logger.With("fabric", opts.Instance), exitWithMe: opts.ExitWithCaller}
	if err := writeState(dir, st); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("fabric: %w", err)
	}
	if b, err := topo.Marshal(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "topology.yaml"), b, 0o644)
	}
	if err := f.build(ctx, opts); err != nil {
		downCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := f.Down(downCtx); derr != nil {
			f.log.Error("cleanup after failed up", "err", derr)
		}
		return nil, fmt.Errorf("fabric %s: %w", opts.Instance, err)
	}
	f.log.Info("fabric up", "tors", len(topo.ToRs), "nodes", len(topo.Nodes), "dir", dir)
	return f, nil
}

func (f *Fabric) build(ctx context.Context, opts Options) error {
	st, topo := f.state, f.state.Topology
	if st.ExternalSegment == "" {
		if err := netns.Create(ctx, st.Switch); err != nil {
			return err
		}
		if err := netns.AddBridge(st.Switch, bridgeName); err != nil {
			return err
		}
	}
	for i, r := range topo.ToRs {
		ns := st.NetNS[r.Name]
		var err error
		if st.ExternalSegment != "" {
			err = f.attachExternal(ctx, ns, HostLinkName(st.Instance, i), r.Address, r.Address6)
		} else {
			err = f.attach(ctx, ns, portName("t", topo.Segment, r.Address), r.Address, r.Address6)
		}
		if err != nil {
			return err
		}
		for _, kv := range [][2]string{
			{"net/ipv4/ip_forward", "1"},
			{"net/ipv4/fib_multipath_hash_policy", "1"},
			{"net/ipv6/conf/all/forwarding", "1"},
			{"net/ipv6/fib_multipath_hash_policy", "1"},
		} {
			if err := netns.Sysctl(ns, kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	for _, n := range topo.Nodes {
		if st.ExternalNodes {
			break
		}
		if err := f.attach(ctx, st.NetNS[n.Name], portName("n", topo.Segment, n.Address), n.Address, n.Address6); err != nil {
			return err
		}
	}
	for i, c := range topo.Clients {
		ns, torNS := st.NetNS[c.Name], st.NetNS[c.ToR]
		if err := netns.Create(ctx, ns); err != nil {
			return err
		}
		port := fmt.Sprintf("c%d", i)
		if err := netns.AddVeth(ns, ClientInterface, torNS, port); err != nil {
			return err
		}
		if err := netns.AddAddress(ns, ClientInterface, netip.PrefixFrom(c.Addr(), c.Link.Bits())); err != nil {
			return err
		}
		if err := netns.AddAddress(torNS, port, netip.PrefixFrom(c.ToRAddr(), c.Link.Bits())); err != nil {
			return err
		}
		if err := netns.AddRoute(ns, netip.MustParsePrefix("0.0.0.0/0"), c.ToRAddr()); err != nil {
			return err
		}
		if c.Link6.IsValid() {
			if err := netns.AddAddress(ns, ClientInterface, netip.PrefixFrom(c.Addr6(), c.Link6.Bits())); err != nil {
				return err
			}
			if err := netns.AddAddress(torNS, port, netip.PrefixFrom(c.ToRAddr6(), c.Link6.Bits())); err != nil {
				return err
			}
			if err := netns.AddRoute(ns, netip.MustParsePrefix("::/0"), c.ToRAddr6()); err != nil {
				return err
			}
		}
	}
	if err := f.buildL2(ctx); err != nil {
		return err
	}
	// Replies from the nodes go back through the client's ToR.
	for _, n := range topo.Nodes {
		if st.ExternalNodes {
			break
		}
		if err := f.nodeRoutes(st.NetNS[n.Name]); err != nil {
			return err
		}
	}
	for _, r := range topo.ToRs {
		if err := f.startRouter(ctx, r.Name, opts); err != nil {
			return err
		}
	}
	return nil
}

// portName names a bridge port after the host part of the element's address, so
// names stay unique when nodes are added and removed ("n15" for 10.0.0.21/24).
func portName(kind string, segment netip.Prefix, addr netip.Addr) string {
	a, base := addr.As4(), segment.Masked().Addr().As4()
	host := uint32(a[0]-base[0])<<24 | uint32(a[1]-base[1])<<16 | uint32(a[2]-base[2])<<8 | uint32(a[3]-base[3])
	return fmt.Sprintf("%s%x", kind, host)
}

// attach creates a namespace and links it to the segment with addr (and addr6 when
// valid).
func (f *Fabric) attach(ctx context.Context, ns, port string, addr, addr6 netip.Addr) error {
	if err := netns.Create(ctx, ns); err != nil {
		return err
	}
	if err := netns.AddVeth(ns, SegmentInterface, f.state.Switch, port); err != nil {
		return err
	}
	if err := netns.AttachToBridge(f.state.Switch, port, bridgeName); err != nil {
		return err
	}
	if err := netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(addr, f.state.Topology.Segment.Bits())); err != nil {
		return err
	}
	if addr6.IsValid() {
		return netns.AddAddress(ns, SegmentInterface, netip.PrefixFrom(addr6, f.state.Topology.Segment6.Bits()))
	}
	return nil
}

// nodeRoutes gives a node's namespace its routes back to every client link.
func (f *Fabric) nodeRoutes(ns string) error {
	topo := f.state.Topology
	for _, c := range topo.Clients {
		tor, _ := topo.ToR(c.ToR)
		if err := netns.AddRoute(ns, c.Link, tor.Address); err != nil {
			return err
		}
		if c.Link6.IsValid() {
			if err := netns.AddRoute(ns, c.Link6, tor.Address6); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *Fabric) startRouter(ctx context.Context, tor string, opts Options) error {
	sock := filepath.Join(f.dir, tor+".sock")
	cfg, err := router.ConfigFor(f.state.Topology, tor, sock)
	if err != nil {
		return err
	}
	cfg.FIB = !opts.NoFIB
	cfg.NetNS = f.state.NetNS[tor]
	cfgPath := filepath.Join(f.dir, tor+".json")
	if err := cfg.Write(cfgPath); err != nil {
		return err
	}
	p, err := f.spawn(f.state.NetNS[tor], filepath.Join(f.dir, tor+".log"), "router", "--config", cfgPath)
	if err != nil {
		return fmt.Errorf("router %s: %w", tor, err)
	}
	p.Socket, p.Config = sock, cfgPath
	if err := f.update(func(s *State) { s.Routers[tor] = p }); err != nil {
		return err
	}
	c := control.NewClient(sock)
	defer c.Close()
	if err := waitHealthy(ctx, c, p, opts.StartTimeout); err != nil {
		// Down removes the log with the instance: the error carries its end.
		return fmt.Errorf("router %s: %w (log: %s, ending:\n%s)", tor, err, p.Log, logTail(p.Log, 20))
	}
	return nil
}

// logTail is the last n lines of the file at path (what it can read).
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// spawn starts `fabric <args>` inside a namespace, detached from the caller's session
// so it outlives a CLI invocation.
func (f *Fabric) spawn(ns, logPath string, args ...string) (Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, f.state.Binary}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if f.exitWithMe {
		// The kernel signals when the forking OS thread exits; the Go runtime ends a
		// thread only when a goroutine locked to it returns, so in practice this
		// fires when the calling process dies.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return Proc{}, err
	}
	go func() { _ = cmd.Wait() }() // reap; liveness is checked by pid
	return Proc{PID: cmd.Process.Pid, NetNS: ns, Log: logPath}, nil
}

func waitHealthy(ctx context.Context, c *control.Client, p Proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		last = c.Healthy(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("process %d exited", p.PID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *Fabric) update(mut func(*State)) error {
	unlock, err := lockDir(f.dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := readState(f.dir)
	if err != nil {
		return err
	}
	mut(&st)
	if err := writeState(f.dir, st); err != nil {
		return err
	}
	f.state = st
	return nil
}

func (f *Fabric) refresh() {
	if st, err := readState(f.dir); err == nil {
		f.state = st
	}
}

// Open attaches to a running instance (root empty: DefaultStateRoot).
func Open(instance, root string) (*Fabric, error) {
	if root == "" {
		root = DefaultStateRoot
	}
	dir := filepath.Join(root, instance)
	st, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("fabric %s: %w", instance, err)
	}
	return &Fabric{dir: dir, state: st, log: slog.Default().With("fabric", instance)}, nil
}

// Destroy removes an instance by name, running or stale (root empty: DefaultStateRoot).
func Destroy(ctx context.Context, instance, root string) error {
	if root == "" {
		root = DefaultStateRoot
	}
	dir := filepath.Join(root, instance)
	st, err := readState(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir); serr == nil {
				// Up died before writing state: only the directory is left, plus
				// possibly namespaces with the instance prefix.
				return errors.Join(deletePrefixed("elb-"+instance), os.RemoveAll(dir))
			}
		}
		return fmt.Errorf("fabric %s: %w", instance, err)
	}
	f := &Fabric{dir: dir, state: st, log: slog.Default().With("fabric", instance)}
	return f.Down(ctx)
}

func deletePrefixed(prefix string) error {
	ents, err := os.ReadDir(netns.Dir)
	if err != nil {
		return nil
	}
	var errs []error
	for _, e := range ents {
		if n := e.Name(); n == prefix || len(n) > len(prefix) && n[:len(prefix)+1] == prefix+"-" {
			_, _ = proc.SignalInNetNS(n, syscall.SIGKILL)
			errs = append(errs, netns.Delete(n))
		}
	}
	return errors.Join(errs...)
}

// Down stops every process the instance started (announcers, routers, then anything
// still running in its namespaces), deletes its namespaces (and with them every veth)
// and its state directory.
func (f *Fabric) Down(ctx context.Context) error {
	f.refresh()
	var procs []Proc
	for _, p := range f.state.Announcers {
		procs = append(procs, p)
	}
	for _, p := range f.state.Routers {
		procs = append(procs, p)
	}
	stopProcs(ctx, procs)
	f.cleanFRR()
	// Level-triggered: a pass removes what is still there; the kernel tears
	// a namespace (and its veths) down after its last process exited, so a
	// pass can race that and the next one finds it gone.
	backoff := downRetry
	for pass := 1; ; pass++ {
		err := f.removeOnce()
		if err == nil {
			break
		}
		if pass == downPasses {
			return fmt.Errorf("fabric %s down (%d passes): %w", f.state.Instance, pass, err)
		}
		f.log.Warn("fabric down: retrying", "pass", pass, "err", err)
		time.Sleep(backoff)
		backoff *= 2
	}
	f.log.Info("fabric down")
	return nil
}

// downPasses and downRetry bound Down's removal passes: 5 passes 0.2, 0.4,
// 0.8, 1.6 s apart.
const (
	downPasses = 5
	downRetry  = 200 * time.Millisecond
)

// removeOnce kills what runs in the instance's namespaces and deletes them,
// its host links and its state directory; what is already gone is no error.
func (f *Fabric) removeOnce() error {
	var errs []error
	for _, ns := range f.state.Namespaces() {
		if !netns.Exists(ns) {
			continue
		}
		if pids, _ := proc.InNetNS(ns); len(pids) > 0 {
			_, _ = proc.SignalInNetNS(ns, syscall.SIGCONT)
			_, _ = proc.SignalInNetNS(ns, syscall.SIGKILL)
		}
		if err := netns.Delete(ns); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, deletePrefixed("elb-"+f.state.Instance))
	errs = append(errs, f.deleteHostLinks())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(f.dir)
}

// stopProcs sends SIGTERM (and SIGCONT, in case a fault froze them) and escalates to
// SIGKILL after 3 s.
func stopProcs(ctx context.Context, procs []Proc) {
	for _, p := range procs {
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGTERM)
			_ = syscall.Kill(p.PID, syscall.SIGCONT)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, p := range procs {
		for p.Alive() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if p.Alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// Instance is the instance name.
func (f *Fabric) Instance() string { return f.state.Instance }

// Dir is the instance's state directory.
func (f *Fabric) Dir() string { return f.dir }

// Topology is the topology the instance runs (with defaults filled in).
func (f *Fabric) Topology() topology.Topology { return f.state.Topology }

// State returns the recorded state (processes, namespaces).
func (f *Fabric) State() State { f.refresh(); return f.state }

// NetNS returns the namespace name of a ToR, node or client ("" if unknown). Use it
// with `ip netns exec NAME ...`; netns.Path turns it into a path.
func (f *Fabric) NetNS(element string) string { return f.state.NetNS[element] }

// NodeNetNS returns the namespace name of a node, where its speaker must run.
func (f *Fabric) NodeNetNS(node string) string { return f.NetNS(node) }

// NodeNetNSPath returns the bind-mount path of a node's namespace (/var/run/netns/NAME).
func (f *Fabric) NodeNetNSPath(node string) string { return netns.Path(f.NetNS(node)) }

// SwitchNetNS is the namespace holding the segment's bridge.
func (f *Fabric) SwitchNetNS() string { return f.state.Switch }
