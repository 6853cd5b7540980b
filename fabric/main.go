// The routers accept BGP sessions with TCP MD5 (BGPPeer passwords); Linux refuses
// MD5 keys on the multipath TCP sockets Go's listeners use by default.
//go:debug multipathtcp=0

// Command fabric runs the virtual ToR fabric: GoBGP routers with ECMP RIBs and kernel
// FIBs in network namespaces, nodes and clients on an L2 segment, fault injection.
//
//	fabric up [-f topology.yaml] [--instance NAME] [--clean-stale] [--no-fib]
//	fabric down [NAME...] [--all] [--stale]
//	fabric list
//	fabric route PREFIX|ADDRESS [--tor NAME]
//	fabric rib | neighbors | bfd [--tor NAME]
//	fabric history [--tor NAME] [--after SEQ] [--prefix P]
//	fabric events [--tor NAME] [--after SEQ]
//	fabric fault KIND TARGET [--duration D]     (kinds: node-down node-freeze node-drain link-flap tor-down)
//	fabric repair KIND TARGET
//	fabric faults                                (the fault log with timestamps)
//	fabric announcer NODE PREFIX... [--bfd PROFILE]   (test speaker in a node namespace)
//	fabric add-node NAME ADDRESS [--asn N] [--bfd PROFILE]
//	fabric remove-node NAME
//	fabric flows --to IP:PORT [--client NAME] [-n N] [--own]
//	fabric topology                              (print the reference topology)
//
// Global flags (before the subcommand): -o text|json, -i INSTANCE, --state-root DIR, -v.
// Internal: `fabric router --config F` and `fabric announce --config F` are the
// processes the fabric starts inside namespaces.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/ecmplb/ecmplb/fabric/cli"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fabric:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: fabric [-o text|json] [-i INSTANCE] [--state-root DIR] [-v] COMMAND [ARGS]
commands: up down list route rib neighbors bfd history events fault repair faults announcer add-node remove-node flows topology
`)
}

func run(args []string) error {
	global := flag.NewFlagSet("fabric", flag.ContinueOnError)
	global.Usage = usage
	output := global.String("o", "text", "output: text or json")
	instance := global.String("i", "", "fabric instance (default: the only running one)")
	stateRoot := global.String("state-root", fabric.DefaultStateRoot, "directory of instance state")
	verbose := global.Bool("v", false, "debug logging")
	if err := global.Parse(args); err != nil {
		return err
	}
	if global.NArg() == 0 {
		usage()
		return fmt.Errorf("missing command")
	}
	out, err := cli.ParseOutput(*output)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	env := cli.Env{Out: os.Stdout, Err: os.Stderr, Output: out, StateRoot: *stateRoot, Instance: *instance, Log: log}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	cmd, rest := global.Arg(0), global.Args()[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	tor := fs.String("tor", "", "ToR name (default: every ToR)")
	switch cmd {
	case "router", "announce":
		config := fs.String("config", "", "config file written by the fabric")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if cmd == "router" {
			return cli.RunRouter(*config, log)
		}
		return cli.RunAnnouncer(*config, log)
	case "up":
		file := fs.String("f", "", "topology YAML (default: the reference topology)")
		name := fs.String("instance", "", "instance name (default: random)")
		cleanStale := fs.Bool("clean-stale", false, "remove stale instances first")
		noFIB := fs.Bool("no-fib", false, "do not program the ToRs' kernel FIBs")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		topo, err := cli.LoadTopology(*file)
		if err != nil {
			return err
		}
		return cli.Up(ctx, env, topo, fabric.Options{Instance: *name, Logger: log, NoFIB: *noFIB}, *cleanStale)
	case "down":
		all := fs.Bool("all", false, "remove every instance")
		stale := fs.Bool("stale", false, "remove stale instances")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		return cli.Down(ctx, env, fs.Args(), *all, *stale)
	case "list":
		return cli.List(env)
	case "faults":
		return cli.Faults(env)
	case "topology":
		return cli.PrintTopology(env)
	case "route":
		if err := fs.Parse(cli.Reorder(rest)); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: fabric route PREFIX|ADDRESS [--tor NAME]")
		}
		return cli.Route(ctx, env, *tor, fs.Arg(0))
	case "rib", "neighbors", "bfd":
		if err := fs.Parse(rest); err != nil {
			return err
		}
		switch cmd {
		case "rib":
			return cli.RIB(ctx, env, *tor)
		case "neighbors":
			return cli.Neighbors(ctx, env, *tor)
		}
		return cli.BFD(ctx, env, *tor)
	case "history", "events":
		after := fs.Uint64("after", 0, "only entries with a higher sequence number")
		prefix := fs.String("prefix", "", "only this prefix (history)")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if cmd == "events" {
			return cli.Events(ctx, env, *tor, *after)
		}
		var p netip.Prefix
		if *prefix != "" {
			if p, err = netip.ParsePrefix(*prefix); err != nil {
				return err
			}
		}
		return cli.History(ctx, env, *tor, *after, p)
	case "fault", "repair":
		// --tor (defined for every command) limits bfd-admin-down and bfd-flap to
		// one ToR (default: every ToR running BFD with the node).
		dur := fs.Duration("duration", 0, "down time of link-flap (default 1s) and bfd-flap (default 1.5s)")
		link := fs.String("link", "", "node-down and link-flap: only this link of the node, segment or l2 (default every link)")
		if err := fs.Parse(cli.Reorder(rest)); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return fmt.Errorf("usage: fabric %s KIND TARGET (kinds: %v)", cmd, fabric.FaultKinds)
		}
		flt := fabric.Fault{Kind: fabric.FaultKind(fs.Arg(0)), Target: fs.Arg(1), ToR: *tor, Duration: *dur, Link: *link}
		return cli.Fault(ctx, env, flt, cmd == "repair")
	case "announcer":
		bfd := fs.String("bfd", "", "BFD profile (from the topology) towards the ToRs")
		if err := fs.Parse(cli.Reorder(rest)); err != nil {
			return err
		}
		if fs.NArg() < 1 {
			return fmt.Errorf("usage: fabric announcer NODE PREFIX... [--bfd PROFILE]")
		}
		var prefixes []netip.Prefix
		for _, a := range fs.Args()[1:] {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return err
			}
			prefixes = append(prefixes, p)
		}
		return cli.StartAnnouncer(ctx, env, fs.Arg(0), prefixes, *bfd)
	case "add-node":
		asn := fs.Uint("asn", 65100, "AS number of the node")
		bfd := fs.String("bfd", "", "BFD profile (from the topology) the ToRs use towards it")
		if err := fs.Parse(cli.Reorder(rest)); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return fmt.Errorf("usage: fabric add-node NAME ADDRESS [--asn N] [--bfd PROFILE]")
		}
		addr, err := netip.ParseAddr(fs.Arg(1))
		if err != nil {
			return err
		}
		return cli.AddNode(ctx, env, topology.Node{Name: fs.Arg(0), Address: addr, ASN: uint32(*asn), BFDProfile: *bfd})
	case "remove-node":
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: fabric remove-node NAME")
		}
		return cli.RemoveNode(ctx, env, fs.Arg(0))
	case "flows":
		client := fs.String("client", "client", "client namespace element")
		to := fs.String("to", "", "destination IP:PORT (UDP)")
		n := fs.Int("n", 32, "number of flows")
		own := fs.Bool("own", false, "put the destination address on every node's loopback during the test")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		dst, err := netip.ParseAddrPort(*to)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		return cli.Flows(ctx, env, *client, dst, *n, *own)
	}
	usage()
	return fmt.Errorf("unknown command %q", cmd)
}
