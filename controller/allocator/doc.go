// Package allocator is the functional core of the ecmplb controller: it keeps
// the address pools and every Service's allocation in memory and decides which
// IPs a Service gets. It does no I/O; the reconciler feeds it pools and
// Services and writes its answers to the API server.
//
// Each pool keeps, per address family, an ordered set of free address
// intervals, so taking the lowest free address, taking a specific address and
// returning one all cost O(log n) in the number of intervals, whatever the
// pool size (an IPv6 /64 is one interval, never enumerated).
package allocator
