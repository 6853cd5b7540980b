package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/fabric/cli"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/reports"
)

// ReferenceOptions tune RunReference.
type ReferenceOptions struct {
	// Out receives the human-readable transcript.
	Out io.Writer
	// ReportDir receives report.json, junit.xml and report.html; empty: no
	// files are written.
	ReportDir string
	// Hold keeps the lab up after the drills until ctx ends (Ctrl-C), so the
	// fabric can be inspected with the fabric CLI and gobgp.
	Hold bool
	// DrainNode and FailNode name the nodes of the drain and hard-failure
	// drills (default node3 and node2).
	DrainNode, FailNode string
}

// ReferenceResult is what RunReference did.
type ReferenceResult struct {
	Run         reports.Run
	ReportPaths reports.Paths
}

// RunReference is the main job: the reference topology with the example
// manifests, an announcement, real flows, an endpoint drain and a
// hard-failure drill with and without BFD, written up as a report.
func RunReference(ctx context.Context, cfg Config, opts ReferenceOptions) (res ReferenceResult, err error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.DrainNode == "" {
		opts.DrainNode = "node3"
	}
	if opts.FailNode == "" {
		opts.FailNode = "node2"
	}
	print := func(format string, args ...any) { fmt.Fprintf(opts.Out, format, args...) }
	res.Run = reports.Run{Name: "lab: reference topology", Backend: "lab", Started: time.Now(), Environment: environment()}
	defer func() {
		res.Run.Finished = time.Now()
		if opts.ReportDir != "" {
			paths, werr := reports.WriteAll(opts.ReportDir, res.Run)
			if werr != nil && err == nil {
				err = werr
			}
			res.ReportPaths = paths
		}
	}()

	print("== starting the lab: etcd + kube-apiserver %s, fabric (2 ToRs, 3 nodes, 1 client), controller, 3 speakers\n", res.Run.Environment["kubernetes"])
	start := time.Now()
	l, err := Up(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer func() {
		print("== tearing down\n")
		if derr := l.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	print("   up in %s (fabric instance %s, logs in %s)\n", time.Since(start).Round(time.Millisecond), l.Fabric.Instance(), l.Dir)

	print("\n== scenario: announce\n")
	sc, ip, err := l.Announce(ctx, print)
	res.Run.Scenarios = append(res.Run.Scenarios, sc)
	if err != nil {
		return res, err
	}
	if err := l.showService(ctx, opts.Out); err != nil {
		return res, err
	}
	print("\n$ fabric route %s\n", ip)
	if err := cli.Route(ctx, cli.Env{Out: opts.Out, Err: opts.Out, Instance: l.Fabric.Instance()}, "", ip.String()); err != nil {
		return res, err
	}
	print("\n$ fabric bfd\n")
	if err := cli.BFD(ctx, cli.Env{Out: opts.Out, Err: opts.Out, Instance: l.Fabric.Instance()}, ""); err != nil {
		return res, err
	}

	steps := []struct {
		title string
		run   func() (reports.Scenario, error)
	}{
		{"ecmp-flows", func() (reports.Scenario, error) { return l.Flows(ctx, ip, print) }},
		{"drain " + opts.DrainNode, func() (reports.Scenario, error) { return l.Drain(ctx, ip, opts.DrainNode, print) }},
		{"hard-fail " + opts.FailNode, func() (reports.Scenario, error) {
			return l.HardFail(ctx, ip, opts.FailNode, print)
		}},
	}
	for _, s := range steps {
		print("\n== scenario: %s\n", s.title)
		sc, err := s.run()
		res.Run.Scenarios = append(res.Run.Scenarios, sc)
		if err != nil {
			return res, err
		}
	}
	print("\n$ fabric route %s   (after the drills)\n", ip)
	if err := cli.Route(ctx, cli.Env{Out: opts.Out, Err: opts.Out, Instance: l.Fabric.Instance()}, "", ip.String()); err != nil {
		return res, err
	}
	if opts.Hold {
		print("\n== the lab stays up (fabric instance %s); inspect it from another shell:\n", l.Fabric.Instance())
		print("   go run ./fabric route %s;  go run ./fabric neighbors;  go run ./fabric bfd;  go run ./fabric history\n", ip)
		print("   ip netns exec %s gobgp neighbor\n   Ctrl-C tears it down.\n", l.Fabric.NetNS(l.Fabric.Topology().ToRs[0].Name))
		<-ctx.Done()
	}
	return res, nil
}

// showService prints the example Service as `kubectl get svc` does.
func (l *Lab) showService(ctx context.Context, w io.Writer) error {
	svc, err := l.Kube.CoreV1().Services(ExampleNamespace).Get(ctx, ExampleService, metav1.GetOptions{})
	if err != nil {
		return err
	}
	var ips, ports []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
	}
	fmt.Fprintf(w, "\n$ kubectl get svc %s\n%-6s %-14s %-14s %-16s %s\n%-6s %-14s %-14s %-16s %s\n", svc.Name,
		"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)",
		svc.Name, svc.Spec.Type, svc.Spec.ClusterIP, strings.Join(ips, ","), strings.Join(ports, ","))
	return nil
}

// environment describes the run for the report.
func environment() map[string]string {
	env := map[string]string{"go": runtime.Version(), "topology": "reference (seed-examples)"}
	if root, err := testenv.RepoRoot(); err == nil {
		if v, err := testenv.Versions(root); err == nil {
			env["kubernetes"] = v["KUBE_VERSION"]
			env["etcd"] = v["ETCD_VERSION"]
		}
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			env["commit"] = strings.TrimSpace(string(out))
		}
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		env["kernel"] = strings.TrimSpace(string(out))
	}
	if h, err := os.Hostname(); err == nil {
		env["host"] = h
	}
	env["cpus"] = fmt.Sprint(runtime.NumCPU())
	return env
}
