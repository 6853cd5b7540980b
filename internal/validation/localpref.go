package validation

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// localPrefConflict rejects ad when another advertisement would send a
// peer the same route with a different LOCAL_PREF, as MetalLB does: both
// cover a pool, with the same aggregation length for its families (so the
// same prefix), towards a common peer (an empty list means every peer),
// from common nodes. Advertisements with serviceSelectors are not compared
// (which Services they cover is unknown here); the speaker checks those per
// Service. Nodes are not known at admission: node selectors are taken to
// share nodes when one of them is empty (every node) or both are the same.
func localPrefConflict(ad *v1beta1.BGPAdvertisement, others []v1beta1.BGPAdvertisement, pools []parsedPool) error {
	a := &ad.Spec
	if len(a.ServiceSelectors) > 0 {
		return nil
	}
	a4, a6, err := AggregationLengths(a.AggregationLength, a.AggregationLengthV6)
	if err != nil {
		return nil
	}
	for i := range others {
		o := &others[i]
		b := &o.Spec
		if o.Name == ad.Name || len(b.ServiceSelectors) > 0 || a.LocalPref == b.LocalPref {
			continue
		}
		b4, b6, err := AggregationLengths(b.AggregationLength, b.AggregationLengthV6)
		if err != nil {
			continue
		}
		if len(a.Peers) > 0 && len(b.Peers) > 0 && !slices.ContainsFunc(a.Peers, func(p string) bool { return slices.Contains(b.Peers, p) }) {
			continue
		}
		if !selectorsMayShare(a.NodeSelectors, b.NodeSelectors) {
			continue
		}
		for _, p := range pools {
			if !AdvertisesPool(a.IPAddressPools, a.IPAddressPoolSelectors, p.pool.Name, p.pool.Labels) ||
				!AdvertisesPool(b.IPAddressPools, b.IPAddressPoolSelectors, p.pool.Name, p.pool.Labels) {
				continue
			}
			var has4, has6 bool
			for _, r := range p.ranges {
				has4 = has4 || r.First.Is4()
				has6 = has6 || r.First.Is6()
			}
			if (has4 && a4 == b4) || (has6 && a6 == b6) {
				return fieldErr("spec.localPref", "%d conflicts with localPref %d of BGPAdvertisement %q: both announce IPAddressPool %q with the same aggregation length to the same peers from the same nodes",
					a.LocalPref, b.LocalPref, o.Name, p.pool.Name)
			}
		}
	}
	return nil
}

// selectorsMayShare tells whether two node selector lists may select a
// common node without knowing the nodes: one selects every node, or both
// are the same.
func selectorsMayShare(a, b []metav1.LabelSelector) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	return selectorKey(a) == selectorKey(b)
}

// selectorKey is a canonical form of a list of label selectors (an OR of
// selectors, so order does not matter); invalid selectors keep their raw form.
func selectorKey(sels []metav1.LabelSelector) string {
	keys := make([]string, 0, len(sels))
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			keys = append(keys, fmt.Sprintf("invalid:%v", sels[i]))
			continue
		}
		keys = append(keys, s.String())
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	return strings.Join(keys, " | ")
}
