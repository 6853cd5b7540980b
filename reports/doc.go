// Package reports renders the results of ecmplb scenario runs — from the lab
// (network namespaces with real speakers and a virtual ToR fabric) and from the
// Ginkgo scenario suites (see package reports/ginkgoreport, which collects
// them from Ginkgo report entries) — into reports people and CI systems can
// read:
//
//   - JSON (WriteJSON / ReadJSON), the lossless form with every measurement
//     and every sample, that can be stored and re-rendered or compared later
//     (see the reports/render command);
//   - JUnit XML (WriteJUnit) for CI test result views; skipped scenarios
//     carry their reason as <skipped message="...">;
//   - one self-contained HTML page (WriteHTML) with an environment table, a
//     pass/fail/skipped summary, and per scenario its labels, steps,
//     measurements against goals (each marked met or not), distributions as
//     histograms with the median, the p99 and the goal marked, tables (such
//     as a ToR's ECMP set) and timeline charts drawn as inline SVG. The page
//     loads nothing from the network.
//
// A repeated measurement is a distribution (Distribution): its headline
// figure is the p99 over at least MinSamplesForP99 (100) samples and the
// maximum below that, and reports label which one they show.
//
// Compare tells which measurements moved between two runs (median and p99
// or max, absolute and relative) and which scenarios were added or removed;
// WriteHTMLCompared and WriteAllCompared put that at the top of the page.
//
// ECMPTimeline turns each ToR's next-hop set history around a fault into a
// Timeline. WriteAll writes all three files into a directory.
package reports
