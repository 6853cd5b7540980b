// Package scenarios holds ecmplb's end-to-end scenarios: Ginkgo specs that run
// the real controller and speakers against the virtual ToR fabric and assert
// announcements, exact ECMP next-hop sets and failover timing. The `lab`
// backend (package lab) runs everything in network namespaces on this machine
// with a real kube-apiserver; each run writes JUnit, JSON and HTML reports to
// reports/out/.
package scenarios
