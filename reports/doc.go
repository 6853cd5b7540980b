// Package reports renders the results of ecmplb scenario runs — from the lab
// (network namespaces with real speakers and a virtual ToR fabric) and from the
// Ginkgo scenario suites — into reports people and CI systems can read:
//
//   - JSON (WriteJSON / ReadJSON), the lossless form that can be stored and
//     re-rendered later (see the reports/render command);
//   - JUnit XML (WriteJUnit) for CI test result views;
//   - one self-contained HTML page (WriteHTML) with an environment table, a
//     pass/fail summary, and per scenario its steps, measurements against
//     goals, tables (such as a ToR's ECMP set) and timeline charts drawn as
//     inline SVG. The page loads nothing from the network.
//
// WriteAll writes all three into a directory.
package reports
