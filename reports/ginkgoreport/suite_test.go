package ginkgoreport

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/ecmplb/ecmplb/reports"
)

// TestGinkgoSuite runs a real (tiny) Ginkgo suite that uses the helpers the
// way scenario suites do, and checks the converted report in
// ReportAfterSuite.
func TestGinkgoSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ginkgoreport")
}

// backend is what the suite pretends to run on.
const backend = "lab"

var _ = BeforeSuite(func() {
	SetBackend(backend)
	SetEnvironment("topology", "2 ToRs x 3 nodes")
	SetEnvironment("overridden", "by the suite")
})

var _ = BeforeEach(func() { SkipIfLabelled(backend) })

// detect is 120 samples 1..120 ms: enough for a p99.
func detect() []float64 {
	var out []float64
	for i := 1; i <= 120; i++ {
		out = append(out, float64(i))
	}
	return out
}

var _ = Describe("a drill", Label("bfd"), func() {
	It("records its results", Label("fast"), func() {
		SetDescription("checks the helpers")
		By("injecting a fault")
		now := time.Now()
		AddStep(now.Add(time.Millisecond), "observed later")
		AddMeasurement("repair → back", "s", 1.5, reports.AtMost(5))
		AddDistribution("detection", "ms", detect(), reports.AtMost(100))
		AddDistribution("recovery", "ms", []float64{300, 310, 320}, reports.AtMost(1000))
		AddTimeline(reports.Timeline{Title: "drill", Start: now, Lanes: []reports.Lane{{Name: "tor1", Events: []reports.Event{{At: now, Label: "fault", Kind: reports.KindFault}}}}})
		AddTable(reports.Table{Title: "ECMP", Header: []string{"prefix", "next-hops"}, Rows: [][]string{{"203.0.113.5/32", "10.0.0.11"}}})
	})

	It("attaches a scenario built elsewhere", func() {
		at := time.Now()
		AddResults(reports.Scenario{
			Name: "ignored", Status: reports.StatusFailed, Description: "from a drill",
			Steps:        []reports.Step{{At: at, Text: "drill step"}},
			Measurements: []reports.Measurement{{Name: "a", Unit: "ms", Value: 1}, {Name: "b", Unit: "ms", Value: 2}},
			Timelines:    []reports.Timeline{{Title: "t"}},
			Tables:       []reports.Table{{Title: "x"}},
		})
	})

	It("is skipped with a message", func() {
		Skip("not on this backend")
	})

	It("is skipped by its label", SkipLabel(backend, "needs real pods"), func() {
		Fail("must not run")
	})

	It("runs when the skip label is for another backend", SkipLabel("kind", "no link cut"), func() {})
})

var _ = ReportAfterSuite("convert", func(r Report) {
	run := Run(r, Options{Name: "unit", Environment: map[string]string{"overridden": "by options"}})
	Expect(run.Backend).To(Equal(backend))
	Expect(run.Environment).To(Equal(map[string]string{"topology": "2 ToRs x 3 nodes", "overridden": "by options"}))
	Expect(run.Scenarios).To(HaveLen(5))

	s := run.Scenarios[0]
	Expect(s.Name).To(Equal("a drill records its results"))
	Expect(s.Status).To(Equal(reports.StatusPassed))
	Expect(s.Labels).To(ConsistOf("bfd", "fast"))
	Expect(s.Description).To(Equal("checks the helpers"))
	Expect(s.Steps).To(HaveLen(2))
	Expect(s.Steps[0].Text).To(Equal("injecting a fault"))
	Expect(s.Steps[1].Text).To(Equal("observed later"))
	Expect(s.Measurements).To(HaveLen(3))
	single, det, rec := s.Measurements[0], s.Measurements[1], s.Measurements[2]
	Expect(single.Value).To(Equal(1.5))
	Expect(single.Statistic).To(BeEmpty())
	Expect(det.Samples).To(Equal(detect()))
	Expect(det.Statistic).To(Equal(reports.StatP99))
	Expect(det.Value).To(Equal(119.0)) // nearest rank ceil(0.99*120) = 119
	met, hasGoal := det.Met()
	Expect(hasGoal).To(BeTrue())
	Expect(met).To(BeFalse(), "p99 119 ms > goal 100 ms")
	Expect(rec.Statistic).To(Equal(reports.StatMax))
	Expect(rec.Value).To(Equal(320.0))
	met, _ = rec.Met()
	Expect(met).To(BeTrue())
	Expect(s.Timelines).To(HaveLen(1))
	Expect(s.Tables).To(HaveLen(1))

	built := run.Scenarios[1]
	Expect(built.Name).To(Equal("a drill attaches a scenario built elsewhere"))
	Expect(built.Status).To(Equal(reports.StatusPassed), "the spec's own status, not the attached one's")
	Expect(built.Description).To(Equal("from a drill"))
	Expect(built.Steps).To(HaveLen(1))
	Expect(built.Measurements).To(HaveLen(2))
	Expect(built.Timelines).To(HaveLen(1))
	Expect(built.Tables).To(HaveLen(1))

	Expect(run.Scenarios[2].Status).To(Equal(reports.StatusSkipped))
	Expect(run.Scenarios[2].Failure).To(Equal("not on this backend"))
	Expect(run.Scenarios[3].Status).To(Equal(reports.StatusSkipped))
	Expect(run.Scenarios[3].Failure).To(Equal("lab: needs real pods"))
	Expect(run.Scenarios[3].Labels).To(ConsistOf("skip-lab: needs real pods", "bfd"))
	Expect(run.Scenarios[4].Status).To(Equal(reports.StatusPassed))

	// JUnit: the skipped specs carry their reasons.
	var junit bytes.Buffer
	Expect(reports.WriteJUnit(&junit, run)).To(Succeed())
	var doc struct {
		Tests   int `xml:"tests,attr"`
		Skipped int `xml:"skipped,attr"`
		Cases   []struct {
			Name    string `xml:"name,attr"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testsuite>testcase"`
	}
	Expect(xml.Unmarshal(junit.Bytes(), &doc)).To(Succeed())
	Expect(doc.Tests).To(Equal(5))
	Expect(doc.Skipped).To(Equal(2))
	Expect(doc.Cases[2].Skipped).NotTo(BeNil())
	Expect(doc.Cases[2].Skipped.Message).To(Equal("not on this backend"))
	Expect(doc.Cases[3].Skipped.Message).To(Equal("lab: needs real pods"))
	Expect(doc.Cases[0].Skipped).To(BeNil())
})
