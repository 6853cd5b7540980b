package watch

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/validation"
	"github.com/ecmplb/ecmplb/speaker/announce"
)

// Objects is a snapshot of the metallb.io objects (and the Secrets they refer to)
// in the speaker's namespace.
type Objects struct {
	Pools          []*v1beta1.IPAddressPool
	Advertisements []*v1beta1.BGPAdvertisement
	Peers          []*v1beta2.BGPPeer // read in the storage version
	Communities    []*v1beta1.Community
	BFDProfiles    []*v1beta1.BFDProfile
	L2             []*v1beta1.L2Advertisement
	// Secret returns a Secret by namespace and name (nil if it does not exist).
	Secret func(namespace, name string) *corev1.Secret
	// Namespace is where the speaker reads its objects (default for secret refs).
	Namespace string
}

// ConfigFrom converts the metallb.io objects into announce's input, object by
// object. What only the Kubernetes side can check is checked here with the rules
// the controller shares (internal/validation): a pool's whole spec goes into
// announce.Pool.Err, an L2Advertisement's into announce.L2Advertisement.Err, a BGPPeer's static checks and its password Secret into
// announce.Peer.Err (reported by Compile only on nodes the peer selects). Community
// objects are checked here and returned as problems: an alias whose value is not a
// community, or an alias another Community (sorting before it) defines differently.
// A rejected Community's aliases are left out, so an advertisement naming one is
// rejected in turn by Compile.
func ConfigFrom(o Objects) (announce.Config, []announce.Problem) {
	var cfg announce.Config
	var problems []announce.Problem
	for _, p := range o.Pools {
		ap := announce.Pool{Name: p.Name, Labels: p.Labels, Addresses: p.Spec.Addresses, Created: p.CreationTimestamp.Time}
		if _, err := validation.Pool(p); err != nil {
			ap.Err = err
		}
		cfg.Pools = append(cfg.Pools, ap)
	}
	for _, a := range o.Advertisements {
		s := a.Spec
		cfg.Advertisements = append(cfg.Advertisements, announce.Advertisement{
			Name: a.Name, AggregationLength: s.AggregationLength, AggregationLengthV6: s.AggregationLengthV6,
			LocalPref: s.LocalPref, Communities: s.Communities, IPAddressPools: s.IPAddressPools,
			IPAddressPoolSelectors: s.IPAddressPoolSelectors, NodeSelectors: s.NodeSelectors,
			ServiceSelectors: s.ServiceSelectors, Peers: s.Peers,
		})
	}
	for _, p := range o.Peers {
		cfg.Peers = append(cfg.Peers, peerFrom(p, o))
	}
	for _, a := range o.L2 {
		s := a.Spec
		cfg.L2Advertisements = append(cfg.L2Advertisements, announce.L2Advertisement{
			Name: a.Name, IPAddressPools: s.IPAddressPools, IPAddressPoolSelectors: s.IPAddressPoolSelectors,
			NodeSelectors: s.NodeSelectors, ServiceSelectors: s.ServiceSelectors, Interfaces: s.Interfaces,
			PreferredNodeSelectors: len(s.PreferredNodeSelectors), Err: validation.L2Advertisement(a),
		})
	}
	comms := append([]*v1beta1.Community(nil), o.Communities...)
	sort.Slice(comms, func(i, j int) bool { return comms[i].Name < comms[j].Name })
	cfg.Communities = map[string]string{}
	owner := map[string]string{}
	for _, c := range comms {
		var errs []error
		for i, a := range c.Spec.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			if _, err := validation.ParseCommunity(a.Value); err != nil {
				errs = append(errs, fmt.Errorf("%s: alias %q: %w", field, a.Name, err))
			} else if prev, ok := cfg.Communities[a.Name]; ok && prev != a.Value {
				errs = append(errs, fmt.Errorf("%s: alias %q = %q conflicts with %q in Community %q", field, a.Name, a.Value, prev, owner[a.Name]))
			}
		}
		if len(errs) > 0 {
			problems = append(problems, announce.Problem{Kind: announce.KindCommunity, Name: c.Name, Err: errors.Join(errs...)})
			continue
		}
		for _, a := range c.Spec.Communities {
			cfg.Communities[a.Name] = a.Value
			owner[a.Name] = c.Name
		}
	}
	cfg.BFDProfiles = map[string]announce.BFDProfile{}
	for _, b := range o.BFDProfiles {
		// Out-of-range values (stored before the CRD's bounds, or with the
		// webhook down) reject the profile; peers naming it are rejected in turn.
		if err := validation.BFDProfile(b); err != nil {
			problems = append(problems, announce.Problem{Kind: announce.KindBFDProfile, Name: b.Name, Err: err})
			continue
		}
		s := b.Spec
		cfg.BFDProfiles[b.Name] = announce.BFDProfile{
			Name: b.Name, ReceiveInterval: s.ReceiveInterval, TransmitInterval: s.TransmitInterval,
			DetectMultiplier: s.DetectMultiplier, EchoInterval: s.EchoInterval, EchoMode: s.EchoMode,
			PassiveMode: s.PassiveMode, MinimumTTL: s.MinimumTTL,
		}
	}
	return cfg, problems
}

// peerFrom converts one BGPPeer, resolving its password Secret; problems go
// into Err.
func peerFrom(p *v1beta2.BGPPeer, o Objects) announce.Peer {
	s := p.Spec
	ap := announce.Peer{
		Name: p.Name, MyASN: s.MyASN, ASN: s.ASN, Address: s.Address, Port: s.Port,
		SrcAddress: s.SrcAddress, RouterID: s.RouterID, NodeSelectors: s.NodeSelectors,
		Password: s.Password, BFDProfile: s.BFDProfile, EnableGracefulRestart: s.EnableGracefulRestart,
		EBGPMultiHop: s.EBGPMultiHop, VRFName: s.VRFName, DisableMP: s.DisableMP, DualStackAddressFamily: s.DualStackAddressFamily,
		HoldTime: dur(s.HoldTime), KeepaliveTime: dur(s.KeepaliveTime), ConnectTime: dur(s.ConnectTime),
	}
	if err := validation.BGPPeer(p); err != nil {
		ap.Err = err
		return ap
	}
	if s.PasswordSecret.Name != "" {
		ns := s.PasswordSecret.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		var sec *corev1.Secret
		if o.Secret != nil {
			sec = o.Secret(ns, s.PasswordSecret.Name)
		}
		pw, err := validation.PasswordFromSecret(sec, ns, s.PasswordSecret.Name)
		if err != nil {
			ap.Err = err
			return ap
		}
		ap.Password = pw
	}
	return ap
}

func dur(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}

// NodeFrom converts the speaker's Node.
func NodeFrom(n *corev1.Node) announce.Node {
	out := announce.Node{Name: n.Name, Labels: n.Labels}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue {
			out.NetworkUnavailable = true
		}
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out.Addresses = append(out.Addresses, ip.Unmap())
			}
		}
	}
	return out
}

// L2NodeFrom converts a Node for layer 2 mode: its InternalIP addresses, its
// ExternalIP addresses when it has none.
func L2NodeFrom(n *corev1.Node) announce.L2Node {
	out := announce.L2Node{Name: n.Name}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				out.Addrs = append(out.Addrs, ip.Unmap())
			}
		}
		if len(out.Addrs) > 0 {
			break
		}
	}
	return out
}

// endpointNodes returns the nodes with an endpoint that can take traffic,
// sorted (layer 2 mode's externalTrafficPolicy Local).
func endpointNodes(sl []*Slice) []string {
	var out []string
	for _, s := range sl {
		out = append(out, s.Nodes...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ServiceFrom converts a Service and its EndpointSlices. Only LoadBalancer Services
// get IPs; others convert to a Service that announces nothing.
func ServiceFrom(svc *corev1.Service, slices []*Slice, node string) announce.Service {
	out := announce.Service{Key: svc.Namespace + "/" + svc.Name, Labels: svc.Labels,
		Local: svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return out
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			out.IPs = append(out.IPs, ip.Unmap())
		}
	}
	out.LocalEndpoint, out.AnyEndpoint = health(slices, node)
	return out
}

// canServe: an endpoint can take traffic when it is ready, or serving while
// terminating (as MetalLB does, so connections drain while pods shut down).
// Unset conditions count as ready.
func canServe(c discoveryv1.EndpointConditions) bool {
	ready := c.Ready == nil || *c.Ready
	if ready {
		return true
	}
	serving := ready
	if c.Serving != nil {
		serving = *c.Serving
	}
	return serving && c.Terminating != nil && *c.Terminating
}
