// Package announce decides, for one node, which BGP sessions to run and which routes
// to announce for each Service. It is pure: plain data in, plain data out, no clocks,
// no I/O. The speaker compiles the cluster configuration once per configuration change
// (Compile) and then asks the resulting Plan for one Service's routes at a time
// (Plan.Routes), so a change to one Service costs the same however many there are.
package announce

import (
	"fmt"
	"net/netip"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/internal/validation"
)

// ExcludeLabel marks nodes that must not announce load-balancer addresses.
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Pool is an IPAddressPool: the pool of an IP is the pool whose addresses contain it.
type Pool struct {
	Name      string
	Labels    map[string]string
	Addresses []string // CIDRs or "first-last" ranges
	// Created is metadata.creationTimestamp: of two overlapping pools the
	// older is used and the other rejected (validation.ResolveOverlaps).
	Created time.Time
	// Err is a problem found while reading the object (checks that need
	// fields announce does not carry); the pool is rejected with it.
	Err error
}

// Advertisement is a BGPAdvertisement.
type Advertisement struct {
	Name                   string
	AggregationLength      *int32 // default 32
	AggregationLengthV6    *int32 // default 128
	LocalPref              uint32 // 0: not set
	Communities            []string
	IPAddressPools         []string
	IPAddressPoolSelectors []metav1.LabelSelector
	NodeSelectors          []metav1.LabelSelector
	ServiceSelectors       []metav1.LabelSelector
	Peers                  []string // BGPPeer names; empty: all
}

// L2Advertisement is an L2Advertisement (layer 2 mode: ARP/NDP).
type L2Advertisement struct {
	Name                   string
	IPAddressPools         []string
	IPAddressPoolSelectors []metav1.LabelSelector
	NodeSelectors          []metav1.LabelSelector
	ServiceSelectors       []metav1.LabelSelector
	// Interfaces of the selected nodes that answer; empty: all.
	Interfaces []string
	// PreferredNodeSelectors counts spec.preferredNodeSelectors: ecmplb's
	// choice of the answering node takes no preferences, so an advertisement
	// with any is rejected rather than silently announced otherwise.
	PreferredNodeSelectors int
	// Err is a problem found while reading the object (validation.L2Advertisement);
	// the advertisement is rejected with it.
	Err error
}

// Peer is a BGPPeer with its password already resolved from any Secret.
type Peer struct {
	Name                  string
	MyASN, ASN            uint32
	Address               string
	Port                  uint16 // default 179
	SrcAddress            string
	RouterID              string
	HoldTime              *time.Duration // default 90s
	KeepaliveTime         *time.Duration // default HoldTime/3
	ConnectTime           *time.Duration // default DefaultConnectTime
	NodeSelectors         []metav1.LabelSelector
	Password              string
	BFDProfile            string
	EnableGracefulRestart bool
	EBGPMultiHop          bool
	VRFName               string // not supported: rejected when set
	DisableMP             bool   // not supported: rejected when true
	// DualStackAddressFamily: the session carries IPv4 and IPv6 routes
	// whichever family its peer address is.
	DualStackAddressFamily bool
	// Err is a problem found while reading the object (a missing password
	// Secret, a field announce does not carry). It rejects the peer only on
	// nodes its nodeSelectors select.
	Err error
}

// BFDProfile is a BFDProfile resource; nil fields take the BFD defaults.
type BFDProfile struct {
	Name             string
	ReceiveInterval  *uint32
	TransmitInterval *uint32
	DetectMultiplier *uint32
	EchoInterval     *uint32
	EchoMode         *bool
	PassiveMode      *bool
	MinimumTTL       *uint32
}

// Config is the cluster-wide configuration the speaker reads.
type Config struct {
	Pools          []Pool
	Advertisements []Advertisement
	Peers          []Peer
	// Communities maps alias names (from Community objects) to community strings.
	Communities map[string]string
	BFDProfiles map[string]BFDProfile
	// L2Advertisements are layer 2 mode's; a pool may have both kinds.
	L2Advertisements []L2Advertisement
}

// Node is what the speaker knows about the node it runs on.
type Node struct {
	Name   string
	Labels map[string]string
	// Addresses are the node's addresses, preferred (InternalIP) first.
	Addresses []netip.Addr
	// NetworkUnavailable is the node condition NetworkUnavailable == True.
	NetworkUnavailable bool
}

// Defaults for BGP sessions.
const (
	DefaultHoldTime    = validation.DefaultHoldTime
	DefaultConnectTime = validation.DefaultConnectTime
	DefaultPort        = 179
)

// Problem is one object Compile rejected; the rest of the configuration
// applies without it.
type Problem struct {
	Kind string // IPAddressPool, BGPPeer, BGPAdvertisement, Community, BFDProfile, L2Advertisement
	Name string
	Err  error // names the field
}

func (p Problem) Error() string { return fmt.Sprintf("%s %q: %v", p.Kind, p.Name, p.Err) }

// Object kinds as named in Problems.
const (
	KindPool          = "IPAddressPool"
	KindPeer          = "BGPPeer"
	KindAdvertisement = "BGPAdvertisement"
	KindCommunity     = "Community"
	KindBFDProfile    = "BFDProfile"
	KindL2            = "L2Advertisement"
)

// Session is one BGP session this node runs (one per selected BGPPeer).
type Session struct {
	Name            string // BGPPeer name
	MyASN, PeerASN  uint32
	PeerAddress     netip.Addr
	PeerPort        uint16
	SourceAddress   netip.Addr // invalid: chosen by the kernel
	RouterID        netip.Addr
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	ConnectTime     time.Duration
	EBGPMultiHop    bool
	Password        string
	GracefulRestart bool
	BFD             *BFDProfile // nil: no BFD
	VRFName         string
	// NextHopV6 is the next-hop for IPv6 routes when the session runs over IPv4
	// (the node's IPv6 address); invalid: the session's local address is used.
	NextHopV6 netip.Addr
	// NextHopV4 is the next-hop for IPv4 routes when the session runs over IPv6
	// (the node's IPv4 address); invalid: none.
	NextHopV4 netip.Addr
	// DualStack (dualStackAddressFamily) negotiates IPv4 and IPv6 unicast on
	// the session, which then carries the routes of both families; otherwise
	// it carries those of its peer address's family only.
	DualStack bool
}

// Carries tells whether the session carries routes to addr, as MetalLB
// activates address families: those of its peer address's family; with
// dualStackAddressFamily those of the other family too, given a next-hop of
// that family (the node has an address of it).
func (s Session) Carries(addr netip.Addr) bool {
	switch {
	case addr.Is4() == s.PeerAddress.Is4():
		return true
	case !s.DualStack:
		return false
	case addr.Is4():
		return s.NextHopV4.IsValid()
	default:
		return s.NextHopV6.IsValid()
	}
}

// IBGP tells whether the session is internal (same AS on both sides).
func (s Session) IBGP() bool { return s.MyASN == s.PeerASN }

// Service is one Service's state as far as announcing goes.
type Service struct {
	Key    string // namespace/name
	Labels map[string]string
	// IPs are the allocated addresses (status.loadBalancer.ingress).
	IPs []netip.Addr
	// Local is externalTrafficPolicy: Local.
	Local bool
	// LocalEndpoint: some endpoint on this node is ready, or serving while terminating.
	LocalEndpoint bool
	// AnyEndpoint: the same, on any node.
	AnyEndpoint bool
}

// Route is one prefix announced to one peer with its attributes.
type Route struct {
	Peer        string // BGPPeer name
	Prefix      netip.Prefix
	LocalPref   uint32      // 0: not sent (always 0 towards eBGP peers)
	Communities []Community // sorted, no duplicates
}
