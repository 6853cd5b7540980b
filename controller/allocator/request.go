package allocator

import (
	"fmt"
	"net/netip"
)

// FamilyPolicy is a Service's spec.ipFamilyPolicy.
type FamilyPolicy int

const (
	// SingleStack wants one IP of the Service's primary family.
	SingleStack FamilyPolicy = iota
	// PreferDualStack wants one IP per family when the pool has both.
	PreferDualStack
	// RequireDualStack wants one IPv4 and one IPv6, from one pool.
	RequireDualStack
)

// Port is one Service port as far as IP sharing is concerned.
type Port struct {
	Protocol string
	Port     int32
}

// String formats p as "80/TCP".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Protocol) }

// Request is what one LoadBalancer Service asks of the allocator.
type Request struct {
	// Key identifies the Service ("namespace/name").
	Key string
	// Namespace, Labels and NamespaceLabels feed pool selection.
	Namespace       string
	Labels          map[string]string
	NamespaceLabels map[string]string
	// Families is spec.ipFamilies (primary first); empty means IPv4 only.
	Families []Family
	// Policy is spec.ipFamilyPolicy.
	Policy FamilyPolicy
	// IPs are requested addresses (metallb.io/loadBalancerIPs or
	// spec.loadBalancerIP), at most one per family.
	IPs []netip.Addr
	// Pool is the requested pool (metallb.io/address-pool), or "".
	Pool string
	// SharingKey is metallb.io/allow-shared-ip, or "".
	SharingKey string
	// Ports are the Service's ports.
	Ports []Port
	// Local is true for externalTrafficPolicy Local.
	Local bool
	// Selector is the Service's pod selector.
	Selector map[string]string
}

func (r *Request) primary() Family {
	if len(r.Families) > 0 {
		return r.Families[0]
	}
	return IPv4
}

func (r *Request) wantsDual() bool {
	return r.Policy == RequireDualStack || (r.Policy == PreferDualStack && len(r.Families) == 2)
}

// Reason classifies why an allocation failed (used for Events and metrics).
type Reason string

// Failure reasons.
const (
	ReasonInvalidRequest Reason = "InvalidRequest"
	ReasonPoolNotFound   Reason = "PoolNotFound"
	ReasonNotInPool      Reason = "IPNotInPool"
	ReasonIPInUse        Reason = "IPInUse"
	ReasonNoMatchingPool Reason = "NoMatchingPool"
	ReasonExhausted      Reason = "PoolExhausted"
)

// Error is an allocation failure.
type Error struct {
	Reason Reason
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// Assignment is a Service's allocation.
type Assignment struct {
	// Pool is the pool the IPs came from ("" if none of them is in a pool).
	Pool string
	// IPs are the Service's addresses, primary family first.
	IPs []netip.Addr
	// OutOfPool lists those IPs that no longer lie in any pool: kept, not
	// reassigned, and to be reported.
	OutOfPool []netip.Addr
}

// Holding is one IP and the Services holding it.
type Holding struct {
	IP       netip.Addr
	Services []string
}

// PoolChange reports what a pool update did to existing allocations.
type PoolChange struct {
	// Orphaned are allocations left outside every pool (kept, not moved).
	Orphaned []Holding
	// Adopted are allocations that were outside every pool and now lie in
	// this one.
	Adopted []Holding
}

// Stats are a pool's counters. Counts above math.MaxInt64 saturate.
type Stats struct {
	// Total usable addresses per Family.
	Total [2]int64
	// Assigned addresses per Family.
	Assigned [2]int64
	// Available addresses per Family.
	Available [2]int64
	// Outside is the number of allocated IPs that were in this pool and are
	// no longer (after it shrank).
	Outside int
}
