// Package lab is the `lab` backend of the scenarios: a real, pinned
// kube-apiserver and etcd on the host's loopback, the virtual ToR fabric
// (routers, nodes and a client in their own network namespaces), the real
// ecmplb-controller, and one real ecmplb-speaker process inside every node's
// namespace. There are no kubelets: the lab creates the Node objects and
// plays the part of pods by writing EndpointSlices.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/nsforward"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// Config describes a lab.
type Config struct {
	// Topology of the fabric; zero value: the reference topology with the
	// ToR-side timers of the examples (hold time 90 s) and BFD 300 ms x 3
	// offered to every node.
	Topology *topology.Topology
	// BinDir holds ecmplb-controller, ecmplb-speaker and fabric; empty: they
	// are built from the repository into the lab's directory.
	BinDir string
	// Dir receives logs; empty: a new temporary directory.
	Dir string
	// KeepDir keeps Dir (with the logs) after Down.
	KeepDir bool
	// Logger gets progress messages.
	Logger *slog.Logger
	// SpeakerArgs are extra flags for every speaker.
	SpeakerArgs []string
	// APIServerArgs are extra flags for the kube-apiserver.
	APIServerArgs []string
}

// Lab is a running lab.
type Lab struct {
	Env    *testenv.Env
	Fabric *fabric.Fabric
	Kube   kubernetes.Interface
	Dir    string
	Root   string

	cfg        Config
	log        *slog.Logger
	binDir     string
	controller *proc.Process
	// webhookPort and healthPort are the controller's loopback ports.
	webhookPort, healthPort int
	speakers                map[string]*proc.Process
	bridges                 map[string]*nsforward.Forwarder
	ownDir                  bool
	// speakerPprof: the speaker binary takes --pprof-addr, so a GC can be
	// forced before reading its heap.
	speakerPprof bool

	// faultMu guards the faults left in place that Down undoes: frozen
	// speakers and frozen nodes (nodefaults.go). A cordoned Node goes with
	// the apiserver.
	faultMu                     sync.Mutex
	frozenSpeakers, frozenNodes map[string]bool

	// l2watch records the L2 client's neighbour entries from Up on (nil
	// without an L2 segment), so an expectation can time a change that
	// happened before it began.
	l2watch *netns.NeighWatch
	// arpWatch asks who has each address an l2 expectation waited for
	// (l2owner.go), from its first on; nil until then.
	arpMu    sync.Mutex
	arpWatch *ARPWatch
}

// ReferenceTopology is the fabric of the example manifests
// (backend.Reference) with the examples' hold time of 90 s on the ToRs.
func ReferenceTopology() topology.Topology { return backend.Reference(90 * time.Second).Topology }

// Up starts everything. On error, whatever was started is torn down.
func Up(ctx context.Context, cfg Config) (_ *Lab, err error) {
	l := &Lab{cfg: cfg, log: cfg.Logger, speakers: map[string]*proc.Process{}, bridges: map[string]*nsforward.Forwarder{}}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.Root, err = testenv.RepoRoot(); err != nil {
		return nil, err
	}
	l.Dir = cfg.Dir
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "ecmplb-lab-"); err != nil {
			return nil, err
		}
		l.ownDir = !cfg.KeepDir
	} else if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := l.Down(); derr != nil {
				l.log.Warn("tearing down after a failed start", "err", derr)
			}
		}
	}()

	l.binDir = cfg.BinDir
	if l.binDir == "" {
		l.binDir = filepath.Join(l.Dir, "bin")
		l.log.Info("building ecmplb-controller, ecmplb-speaker and fabric")
		if err := BuildBinaries(ctx, l.Root, l.binDir); err != nil {
			return nil, err
		}
	}

	l.speakerPprof = speakerHasPprof(filepath.Join(l.binDir, "ecmplb-speaker"))

	l.log.Info("starting etcd and kube-apiserver")
	l.Env, err = testenv.StartProcess(ctx, testenv.Options{Dir: filepath.Join(l.Dir, "control-plane"), ExtraAPIServerArgs: cfg.APIServerArgs})
	if err != nil {
		return nil, err
	}
	if l.Kube, err = kubernetes.NewForConfig(l.Env.Config); err != nil {
		return nil, err
	}

	topo := ReferenceTopology()
	if cfg.Topology != nil {
		topo = *cfg.Topology
	}
	l.log.Info("bringing the fabric up", "tors", len(topo.ToRs), "nodes", len(topo.Nodes))
	l.Fabric, err = fabric.Up(ctx, topo, fabric.Options{Binary: filepath.Join(l.binDir, "fabric"), Logger: l.log, ExitWithCaller: true})
	if err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	topo = l.Fabric.Topology()
	if topo.L2 != nil {
		if l.l2watch, err = l.Fabric.WatchL2Neighbors(); err != nil {
			return nil, err
		}
	}

	if err := l.createNodes(ctx, topo); err != nil {
		return nil, err
	}
	l.log.Info("starting ecmplb-controller")
	if err := l.installWebhooks(ctx); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	if err := l.startController(); err != nil {
		return nil, err
	}
	if err := l.waitControllerReady(ctx); err != nil {
		return nil, err
	}
	u, err := url.Parse(l.Env.URL)
	if err != nil {
		return nil, err
	}
	for _, n := range topo.Nodes {
		b, err := nsforward.Start(l.Fabric.NodeNetNS(n.Name), u.Host)
		if err != nil {
			return nil, err
		}
		l.bridges[n.Name] = b
		if err := l.StartSpeaker(n.Name); err != nil {
			return nil, err
		}
	}
	l.log.Info("lab is up", "dir", l.Dir, "apiserver", l.Env.URL, "fabric", l.Fabric.Instance())
	return l, nil
}

// StartSpeaker (re)starts the speaker of a node inside its namespace.
func (l *Lab) StartSpeaker(node string) error {
	if p := l.speakers[node]; p != nil {
		if exited, _ := p.Exited(); !exited {
			return fmt.Errorf("speaker on %s is already running", node)
		}
	}
	args := []string{"--node-name", node, "--kubeconfig", l.Env.Kubeconfig,
		"--metrics-addr", speakerMetricsAddr, "--log-level", "info"}
	if l.speakerPprof {
		args = append(args, "--pprof-addr", speakerPprofAddr)
	}
	args = append(args, l.cfg.SpeakerArgs...)
	p, err := proc.Start("speaker-"+node, proc.Options{LogPath: filepath.Join(l.Dir, "speaker-"+node+".log"), NetNS: l.Fabric.NodeNetNS(node)},
		filepath.Join(l.binDir, "ecmplb-speaker"), args...)
	if err != nil {
		return err
	}
	l.speakers[node] = p
	return nil
}

// StopSpeaker stops a node's speaker gracefully (SIGTERM).
func (l *Lab) StopSpeaker(node string) {
	if p := l.speakers[node]; p != nil {
		p.Stop(5 * time.Second)
	}
}

// Processes lists every process the lab and its fabric run, by name, for
// memory and CPU reports.
func (l *Lab) Processes() map[string]int {
	out := map[string]int{}
	if l.Env != nil {
		out["etcd"] = l.Env.EtcdPID()
		out["kube-apiserver"] = l.Env.APIServerPID()
	}
	if l.controller != nil {
		out["controller"] = l.controller.PID()
	}
	for n, p := range l.speakers {
		if exited, _ := p.Exited(); !exited {
			out["speaker-"+n] = p.PID()
		}
	}
	if l.Fabric != nil {
		for tor, p := range l.Fabric.State().Routers {
			out["router-"+tor] = p.PID
		}
	}
	return out
}

// CheckAlive fails when the controller or a speaker has died, with the end
// of its log.
func (l *Lab) CheckAlive() error {
	procs := []*proc.Process{l.controller}
	names := make([]string, 0, len(l.speakers))
	for n := range l.speakers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		procs = append(procs, l.speakers[n])
	}
	var errs []error
	for _, p := range procs {
		if p == nil {
			continue
		}
		if exited, err := p.Exited(); exited {
			errs = append(errs, fmt.Errorf("%s exited (%v):\n%s", p.Name, err, p.Tail(15)))
		}
	}
	return errors.Join(errs...)
}

// Down stops every process, removes every namespace and link, and the lab's
// directory unless asked to keep it. It is safe to call more than once.
func (l *Lab) Down() error {
	var errs []error
	l.thawAll()
	for n, p := range l.speakers {
		p.Stop(3 * time.Second)
		delete(l.speakers, n)
	}
	if l.controller != nil {
		l.controller.Stop(3 * time.Second)
		l.controller = nil
	}
	for n, b := range l.bridges {
		errs = append(errs, b.Close())
		delete(l.bridges, n)
	}
	if l.l2watch != nil {
		l.l2watch.Close()
		l.l2watch = nil
	}
	l.closeARPWatch()
	if l.Fabric != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, l.Fabric.Down(ctx))
		cancel()
		l.Fabric = nil
	}
	if l.Env != nil {
		errs = append(errs, l.Env.Stop())
		l.Env = nil
	}
	if l.ownDir && l.Dir != "" {
		errs = append(errs, os.RemoveAll(l.Dir))
		l.Dir = ""
	}
	return errors.Join(errs...)
}

// LogPaths returns the log files of the controller and the speakers.
func (l *Lab) LogPaths() []string {
	var out []string
	if l.controller != nil {
		out = append(out, l.controller.LogPath)
	}
	for _, p := range l.speakers {
		out = append(out, p.LogPath)
	}
	sort.Strings(out)
	return out
}
