// Command lab is ecmplb's main job: it starts a real kube-apiserver and etcd,
// the virtual ToR fabric, the real controller and one real speaker per node
// namespace; applies the example manifests unchanged; shows the Service's
// EXTERNAL-IP and every ToR's ECMP set; sends real flows; drains an endpoint;
// runs a hard-failure drill with and without BFD; writes a report to
// reports/out/; and tears everything down on exit or interrupt.
//
// With -nodes and -services it runs the scale check instead; with -l2-bench
// the layer 2 bench (make bench-l2: spread and failover of Service IPs
// answered by ARP on the L2 segment).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/lab"
)

func main() {
	var (
		keep     = flag.Bool("keep-logs", false, "keep the lab directory (process logs) after the run")
		out      = flag.String("out", "", "report directory (default reports/out/lab-<time>)")
		binDir   = flag.String("bin-dir", "", "directory with prebuilt ecmplb-controller, ecmplb-speaker and fabric (default: build them)")
		nodes    = flag.Int("nodes", 0, "scale check: number of nodes (with -services)")
		services = flag.Int("services", 0, "scale check: number of LoadBalancer Services (with -nodes)")
		perSvc   = flag.Int("endpoints", 3, "scale check: nodes with a ready endpoint per Service")
		cluster  = flag.Bool("cluster-policy", false, "scale check: Services with externalTrafficPolicy Cluster (every node announces every Service) instead of Local")
		noStatus = flag.Bool("no-service-status", false, "scale check: run the speakers with --service-status=false (no ServiceBGPStatus objects; printed in the output)")
		verbose  = flag.Bool("v", false, "log progress of the lab's machinery")
		hold     = flag.Bool("hold", false, "keep the lab up after the drills until Ctrl-C, to inspect it")
		l2Bench  = flag.Bool("l2-bench", false, "layer 2 bench: spread of the Service IPs over the nodes and failover time (-nodes default 5, -services default 100)")
		trials   = flag.Int("trials", 20, "layer 2 bench: failover trials")
		l2Fault  = flag.String("fault", string(backend.FaultLinkCut), "layer 2 bench: the failure of each trial: cut-link (node down: every link), freeze-node or freeze-speaker")
		seed     = flag.Uint64("seed", 0, "layer 2 bench: seed of the random Services and phases (0: from the clock; printed)")
	)
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := lab.Config{BinDir: *binDir, KeepDir: *keep, Logger: log}
	var err error
	switch {
	case *l2Bench:
		err = lab.RunL2Bench(ctx, cfg, lab.L2BenchOptions{Nodes: *nodes, Services: *services, Trials: *trials,
			Fault: backend.FaultKind(*l2Fault), Seed: *seed, Out: os.Stdout})
	case *nodes > 0 || *services > 0:
		err = lab.RunScale(ctx, cfg, lab.ScaleOptions{Nodes: *nodes, Services: *services, EndpointsPerService: *perSvc, NoServiceStatus: *noStatus, ClusterPolicy: *cluster, Out: os.Stdout})
	default:
		err = runReference(ctx, cfg, *out, *hold)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func runReference(ctx context.Context, cfg lab.Config, out string, hold bool) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(root, "reports", "out", "lab-"+time.Now().Format("20060102-150405"))
	}
	res, err := lab.RunReference(ctx, cfg, lab.ReferenceOptions{Out: os.Stdout, ReportDir: out, Hold: hold})
	if res.ReportPaths.HTML != "" {
		fmt.Printf("\nreport: %s\n        %s\n        %s\n", res.ReportPaths.HTML, res.ReportPaths.JSON, res.ReportPaths.JUnit)
	}
	return err
}
