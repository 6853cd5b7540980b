// Command kindsmoke creates an ecmplb kind cluster (one control-plane node,
// two workers by default) from the offline node image on an internal Docker
// network, waits until its nodes and kube-system pods are Ready, prints
// `kubectl get nodes -o wide`, and deletes it again, also on failure or
// Ctrl-C. It needs Docker (hack/setup-docker.sh) and the node image
// (hack/build-node-image.sh).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/kindconfig"
)

func main() {
	var o kindconfig.Options
	flag.StringVar(&o.Name, "name", "", "cluster name (default: elb-<random>)")
	flag.StringVar(&o.NodeImage, "image", kindconfig.DefaultNodeImage, "node image")
	flag.IntVar(&o.Workers, "workers", kindconfig.DefaultWorkers, "worker nodes (0: control-plane only)")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up (and clean up) after this long")
	flag.BoolVar(&o.Retain, "keep-failed", false, "keep a failed cluster for debugging (remove it with docker rm -f and docker network rm)")
	verbose := flag.Bool("v", false, "debug logs (kind's details)")
	flag.Parse()
	o.NoWorkers = o.Workers == 0

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	t, err := kindconfig.Smoke(ctx, o, log, os.Stdout)
	fmt.Printf("create %v, nodes ready %v, kube-system pods ready %v, delete %v\n",
		t.Create.Round(time.Millisecond), t.NodesReady.Round(time.Millisecond),
		t.SystemPodsReady.Round(time.Millisecond), t.Delete.Round(time.Millisecond))
	if err != nil {
		log.Error("smoke failed", "err", err)
		os.Exit(1)
	}
}
