package ginkgoreport

import (
	"bytes"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
)

// TestGinkgoSuite runs a real (tiny) Ginkgo suite that uses the helpers, and
// checks the converted report in ReportAfterSuite.
func TestGinkgoSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ginkgoreport")
}

var _ = Describe("a drill", func() {
	It("records its results", func() {
		SetDescription("checks the helpers")
		By("injecting a fault")
		now := time.Now()
		AddStep(now.Add(time.Millisecond), "observed later")
		AddMeasurement(reports.Measurement{Name: "withdraw", Unit: "ms", Value: 700, Samples: []float64{690, 700}, Goal: &reports.Goal{Op: "<=", Value: 1000}})
		AddTimeline(reports.Timeline{Title: "drill", Start: now, Lanes: []reports.Lane{{Name: "tor1", Events: []reports.Event{{At: now, Label: "fault", Kind: reports.KindFault}}}}})
		AddTable(reports.Table{Title: "ECMP", Header: []string{"prefix", "next-hops"}, Rows: [][]string{{"203.0.113.5/32", "10.0.0.11"}}})
	})

	It("is skipped", func() {
		Skip("not on this backend")
	})
})

var _ = ReportAfterSuite("convert", func(r Report) {
	run := Run(r, Options{Name: "unit", Backend: "lab"})
	Expect(run.Scenarios).To(HaveLen(2))

	s := run.Scenarios[0]
	Expect(s.Name).To(Equal("a drill records its results"))
	Expect(s.Status).To(Equal(reports.StatusPassed))
	Expect(s.Description).To(Equal("checks the helpers"))
	Expect(s.Steps).To(HaveLen(2))
	Expect(s.Steps[0].Text).To(Equal("injecting a fault"))
	Expect(s.Steps[1].Text).To(Equal("observed later"))
	Expect(s.Measurements).To(HaveLen(1))
	Expect(s.Measurements[0].Samples).To(Equal([]float64{690, 700}))
	met, hasGoal := s.Measurements[0].Met()
	Expect(met && hasGoal).To(BeTrue())
	Expect(s.Timelines).To(HaveLen(1))
	Expect(s.Tables).To(HaveLen(1))

	Expect(run.Scenarios[1].Status).To(Equal(reports.StatusSkipped))
	Expect(run.Scenarios[1].Failure).To(Equal("not on this backend"))

	var junit bytes.Buffer
	Expect(reports.WriteJUnit(&junit, run)).To(Succeed())
	Expect(junit.String()).To(ContainSubstring(`tests="2"`))
	Expect(junit.String()).To(ContainSubstring(`skipped="1"`))
})
