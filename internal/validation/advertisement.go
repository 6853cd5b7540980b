package validation

import (
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// AggregationLengths checks a BGPAdvertisement's aggregationLength and
// aggregationLengthV6 (nil: not set) and returns the values in force
// (default 32 and 128: one host route per Service IP).
func AggregationLengths(v4, v6 *int32) (aggV4, aggV6 int, err error) {
	aggV4, aggV6 = v1beta1.DefaultAggregationLength, v1beta1.DefaultAggregationLengthV6
	if v4 != nil {
		aggV4 = int(*v4)
		if aggV4 < 0 || aggV4 > 32 {
			return 0, 0, fieldErr("spec.aggregationLength", "%d is outside 0-32", aggV4)
		}
	}
	if v6 != nil {
		aggV6 = int(*v6)
		if aggV6 < 0 || aggV6 > 128 {
			return 0, 0, fieldErr("spec.aggregationLengthV6", "%d is outside 0-128", aggV6)
		}
	}
	return aggV4, aggV6, nil
}

// AggregationFits checks an advertisement's aggregation lengths against
// the addresses of one pool it covers, as MetalLB does: for every entry of
// spec.addresses, the widest CIDR of that entry must not be wider than the
// aggregation length of its family. A /24 pool announced with
// aggregationLength 16 would claim 65280 addresses the cluster does not own.
func AggregationFits(pool string, ranges []Range, aggV4, aggV6 int) error {
	for _, r := range ranges {
		w := r.widest()
		agg, field := aggV4, "spec.aggregationLength"
		if w.Addr().Is6() {
			agg, field = aggV6, "spec.aggregationLengthV6"
		}
		if w.Bits() > agg {
			return fieldErr(field, "%d is shorter than prefix %s of IPAddressPool %q", agg, w, pool)
		}
	}
	return nil
}

// BGPAdvertisement checks everything about one advertisement that needs no
// other object but the Community aliases (name -> value): aggregation
// lengths, serviceSelectors only with the default aggregation (as MetalLB),
// community syntax, and selectors.
func BGPAdvertisement(ad *v1beta1.BGPAdvertisement, aliases map[string]string) error {
	s := &ad.Spec
	var errs []error
	if _, _, err := AggregationLengths(s.AggregationLength, s.AggregationLengthV6); err != nil {
		errs = append(errs, err)
	}
	if len(s.ServiceSelectors) > 0 {
		if s.AggregationLength != nil && *s.AggregationLength != v1beta1.DefaultAggregationLength {
			errs = append(errs, fieldErr("spec.aggregationLength", "%d cannot be used with spec.serviceSelectors (only the default 32)", *s.AggregationLength))
		}
		if s.AggregationLengthV6 != nil && *s.AggregationLengthV6 != v1beta1.DefaultAggregationLengthV6 {
			errs = append(errs, fieldErr("spec.aggregationLengthV6", "%d cannot be used with spec.serviceSelectors (only the default 128)", *s.AggregationLengthV6))
		}
	}
	for i, c := range s.Communities {
		if _, err := ResolveCommunity(c, aliases); err != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("spec.communities[%d]", i), "%s", err.Error()))
		}
	}
	errs = append(errs, advertisementSelectors(s.IPAddressPoolSelectors, s.NodeSelectors, s.ServiceSelectors)...)
	return errors.Join(errs...)
}

// L2Advertisement checks everything about one L2Advertisement that needs no
// other object: selectors, interface names, preferred-node weights. (The
// speaker rejects spec.preferredNodeSelectors, which its choice of the
// answering node does not take; the webhook admits it, as MetalLB's.)
func L2Advertisement(ad *v1beta1.L2Advertisement) error {
	s := &ad.Spec
	var errs []error
	errs = append(errs, advertisementSelectors(s.IPAddressPoolSelectors, s.NodeSelectors, s.ServiceSelectors)...)
	for i, name := range s.Interfaces {
		if err := InterfaceName(name); err != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("spec.interfaces[%d]", i), "%s", err.Error()))
		}
	}
	for i := range s.PreferredNodeSelectors {
		p := &s.PreferredNodeSelectors[i]
		field := fmt.Sprintf("spec.preferredNodeSelectors[%d]", i)
		if p.Weight < 1 || p.Weight > 100 {
			errs = append(errs, fieldErr(field+".weight", "%d is outside 1-100", p.Weight))
		}
		if _, err := metav1.LabelSelectorAsSelector(&p.Preference); err != nil {
			errs = append(errs, fieldErr(field+".preference", "%s", err.Error()))
		}
	}
	return errors.Join(errs...)
}

// AdvertisesPool reports whether an advertisement covering the pools named
// in names or matched by sels (neither: every pool) covers the pool.
func AdvertisesPool(names []string, sels []metav1.LabelSelector, pool string, poolLabels map[string]string) bool {
	if len(names) == 0 && len(sels) == 0 {
		return true
	}
	if slices.Contains(names, pool) {
		return true
	}
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err == nil && s.Matches(labels.Set(poolLabels)) {
			return true
		}
	}
	return false
}

// advertisementSelectors checks the three selector lists both kinds of
// advertisement have.
func advertisementSelectors(pools, nodes, services []metav1.LabelSelector) []error {
	var errs []error
	for _, sel := range []struct {
		field string
		in    []metav1.LabelSelector
	}{
		{"spec.ipAddressPoolSelectors", pools},
		{"spec.nodeSelectors", nodes},
		{"spec.serviceSelectors", services},
	} {
		if err := Selectors(sel.field, sel.in); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
