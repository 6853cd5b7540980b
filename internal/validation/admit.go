package validation

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// Operation is the admission operation under review.
type Operation string

// Admission operations.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Object is a Kubernetes object (controller-runtime's client.Object is one).
// The package does not import controller-runtime: the speaker links it, and
// controller-runtime's client brings every built-in API group with it.
type Object interface {
	metav1.Object
	runtime.Object
}

// Snapshot is every other metallb.io object of the configured namespace
// (not including the object under review) and the Secrets peers reference.
type Snapshot struct {
	Namespace        string
	Pools            []v1beta1.IPAddressPool
	Peers            []v1beta2.BGPPeer
	Advertisements   []v1beta1.BGPAdvertisement
	Communities      []v1beta1.Community
	BFDProfiles      []v1beta1.BFDProfile
	L2Advertisements []v1beta1.L2Advertisement
	Secrets          map[string]*corev1.Secret // by name
}

// Admit decides whether obj may be created, updated or deleted given the
// rest of the configuration: nil, or an error that is (or joins) one
// *FieldError per problem, each naming the field of obj it is about and,
// for conflicts, the other object. It is what the admission webhook runs;
// the controller and the speaker apply the same rules (through the same
// functions) to whatever reaches them anyway.
//
// Rules that need only obj are also CEL rules in the CRDs, so they hold
// while the webhook is down; Admit repeats them so its verdict is complete.
func Admit(op Operation, obj Object, s Snapshot) error {
	if op == Delete {
		if p, ok := obj.(*v1beta1.BFDProfile); ok {
			return bfdProfileInUse(p.Name, s.Peers)
		}
		return nil
	}
	if s.Namespace != "" && obj.GetNamespace() != s.Namespace {
		return fieldErr("metadata.namespace", "%q: ecmplb reads its configuration from namespace %q only; an object elsewhere would be ignored", obj.GetNamespace(), s.Namespace)
	}
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		return admitPool(o, s)
	case *v1beta1.BGPAdvertisement:
		return admitAdvertisement(o, s)
	case *v1beta1.Community:
		return admitCommunity(o, s)
	case *v1beta1.BFDProfile:
		return BFDProfile(o)
	case *v1beta1.L2Advertisement:
		return L2Advertisement(o)
	case *v1beta2.BGPPeer:
		return admitPeer(o, s)
	case *v1beta1.BGPPeer:
		return admitPeer(peerToV1beta2(o), s)
	}
	return nil
}

// parsedPool is a snapshot pool that is valid on its own.
type parsedPool struct {
	pool   *v1beta1.IPAddressPool
	ranges []Range
}

func validPools(pools []v1beta1.IPAddressPool) []parsedPool {
	var out []parsedPool
	for i := range pools {
		if rs, err := Pool(&pools[i]); err == nil {
			out = append(out, parsedPool{&pools[i], rs})
		}
	}
	return out
}

func admitPool(p *v1beta1.IPAddressPool, s Snapshot) error {
	rs, err := Pool(p)
	if err != nil {
		return err
	}
	var errs []error
	// Overlaps with any other pool, whatever their ages: MetalLB refuses
	// them, and at runtime one of the two pools would be left unused.
	for _, o := range validPools(s.Pools) {
		if o.pool.Name == p.Name {
			continue
		}
		for i, r := range rs {
			for _, or := range o.ranges {
				if shared, ok := r.Intersect(or); ok {
					errs = append(errs, fieldErr(fmt.Sprintf("spec.addresses[%d]", i), "%q overlaps IPAddressPool %q in %s", p.Spec.Addresses[i], o.pool.Name, shared))
				}
			}
		}
	}
	// Advertisements already covering this pool must still fit it.
	for i := range s.Advertisements {
		ad := &s.Advertisements[i]
		if !AdvertisesPool(ad.Spec.IPAddressPools, ad.Spec.IPAddressPoolSelectors, p.Name, p.Labels) {
			continue
		}
		v4, v6, err := AggregationLengths(ad.Spec.AggregationLength, ad.Spec.AggregationLengthV6)
		if err != nil {
			continue
		}
		for j, r := range rs {
			if err := AggregationFits(p.Name, []Range{r}, v4, v6); err != nil {
				errs = append(errs, fieldErr(fmt.Sprintf("spec.addresses[%d]", j), "BGPAdvertisement %q: %s", ad.Name, err.Error()))
			}
		}
	}
	return errors.Join(errs...)
}

func admitAdvertisement(ad *v1beta1.BGPAdvertisement, s Snapshot) error {
	if err := BGPAdvertisement(ad, Aliases(s.Communities)); err != nil {
		return err
	}
	v4, v6, _ := AggregationLengths(ad.Spec.AggregationLength, ad.Spec.AggregationLengthV6)
	var errs []error
	pools := validPools(s.Pools)
	for _, p := range pools {
		if !AdvertisesPool(ad.Spec.IPAddressPools, ad.Spec.IPAddressPoolSelectors, p.pool.Name, p.pool.Labels) {
			continue
		}
		if err := AggregationFits(p.pool.Name, p.ranges, v4, v6); err != nil {
			errs = append(errs, err)
		}
	}
	if err := localPrefConflict(ad, s.Advertisements, pools); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func admitCommunity(c *v1beta1.Community, s Snapshot) error {
	if err := CommunityObject(c); err != nil {
		return err
	}
	if err := DuplicateAliases(c, s.Communities); err != nil {
		return err
	}
	// An update must not take away an alias an advertisement still uses.
	aliases := Aliases(append([]v1beta1.Community{*c}, s.Communities...))
	var errs []error
	for i := range s.Advertisements {
		ad := &s.Advertisements[i]
		for j, name := range ad.Spec.Communities {
			if _, err := ResolveCommunity(name, aliases); err != nil {
				errs = append(errs, fieldErr("spec.communities", "BGPAdvertisement %q uses %q in spec.communities[%d], which this change leaves undefined", ad.Name, name, j))
			}
		}
	}
	return errors.Join(errs...)
}

func bfdProfileInUse(name string, peers []v1beta2.BGPPeer) error {
	for i := range peers {
		if peers[i].Spec.BFDProfile == name {
			return fieldErr("metadata.name", "BFDProfile %q is used by BGPPeer %q (spec.bfdProfile); change or delete the peer first", name, peers[i].Name)
		}
	}
	return nil
}
