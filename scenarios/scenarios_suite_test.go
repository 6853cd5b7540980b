package scenarios_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/reports/ginkgoreport"
	"github.com/ecmplb/ecmplb/scenarios/backend"
	"github.com/ecmplb/ecmplb/scenarios/kindbackend"
	"github.com/ecmplb/ecmplb/scenarios/lab"
)

// This file is the only one that knows the backend: every spec gets its
// backend from up and talks to it through backend.Backend.

// binDir holds ecmplb-controller, ecmplb-speaker and fabric, built once for
// every backend of the suite.
var binDir string

// backendName is the backend the suite runs on: ECMPLB_BACKEND, "lab"
// (the default) or "kind".
var backendName = backendFromEnv()

func backendFromEnv() string {
	if b := os.Getenv("ECMPLB_BACKEND"); b != "" {
		return b
	}
	return "lab"
}

// kindCluster is the kind backend's cluster: one per suite run, created at
// the first up and deleted when the suite ends, also on failure.
var kindCluster *kindbackend.Cluster

var _ = BeforeSuite(func() {
	ginkgoreport.SetBackend(backendName)
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	switch backendName {
	case "lab":
	case "kind":
		kindCluster = &kindbackend.Cluster{Root: root, Log: slog.New(slog.NewTextHandler(GinkgoWriter, nil))}
		DeferCleanup(func() { Expect(kindCluster.Delete()).To(Succeed()) })
	default:
		Fail(fmt.Sprintf("ECMPLB_BACKEND=%q: want lab or kind", backendName))
	}
	binDir, err = os.MkdirTemp("", "ecmplb-scenarios-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(os.RemoveAll(binDir)).To(Succeed()) })
	Expect(lab.BuildBinaries(context.Background(), root, binDir)).To(Succeed())
})

var _ = BeforeEach(func() { ginkgoreport.SkipIfLabelled(backendName) })

// up brings a backend up on topo for the calling container (BeforeAll) or
// spec, and tears it down when that ends, also on failure.
func up(topo backend.Topology) backend.Backend {
	t := topo.Topology
	if backendName == "kind" {
		k, err := kindbackend.Up(context.Background(), kindCluster, t, binDir)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(k.Down()).To(Succeed()) })
		return k
	}
	l, err := lab.Up(context.Background(), lab.Config{Topology: &t, BinDir: binDir})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(l.Down()).To(Succeed()) })
	return l.AsBackend()
}

func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end scenarios need root, network namespaces and the pinned apiserver")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "ecmplb scenarios")
}

var _ = ReportAfterSuite("write reports", func(r Report) {
	run := ginkgoreport.Run(r, ginkgoreport.Options{Name: "scenarios", Backend: backendName})
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(root, "reports", "out", "scenarios-"+time.Now().Format("20060102-150405"))
	paths, err := reports.WriteAll(dir, run)
	Expect(err).NotTo(HaveOccurred())
	_, _ = os.Stdout.WriteString("scenario report: " + paths.HTML + "\n")
})
