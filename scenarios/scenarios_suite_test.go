package scenarios_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/reports"
	"github.com/ecmplb/ecmplb/scenarios/lab"
)

// run collects every scenario of this suite run for the report.
var run = reports.Run{Name: "scenarios: reference topology", Backend: "lab", Started: time.Now()}

// binDir holds ecmplb-controller, ecmplb-speaker and fabric, built once for
// every lab of the suite.
var binDir string

var _ = BeforeSuite(func() {
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	binDir, err = os.MkdirTemp("", "ecmplb-scenarios-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(os.RemoveAll(binDir)).To(Succeed()) })
	Expect(lab.BuildBinaries(context.Background(), root, binDir)).To(Succeed())
})

func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end scenarios need root, network namespaces and the pinned apiserver")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "ecmplb scenarios")
}

var _ = ReportAfterSuite("write reports", func(Report) {
	run.Finished = time.Now()
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(root, "reports", "out", "scenarios-"+run.Started.Format("20060102-150405"))
	paths, err := reports.WriteAll(dir, run)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("reports: %s %s %s\n", paths.HTML, paths.JSON, paths.JUnit)
	_, _ = os.Stdout.WriteString("scenario report: " + paths.HTML + "\n")
})
