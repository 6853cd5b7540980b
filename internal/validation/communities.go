package validation

import (
	"errors"
	"fmt"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// CommunityObject checks one Community object alone: every alias has a
// name, a value that is a community, and a name not used twice in it.
func CommunityObject(c *v1beta1.Community) error {
	var errs []error
	seen := map[string]int{}
	for i, a := range c.Spec.Communities {
		field := fmt.Sprintf("spec.communities[%d]", i)
		if a.Name == "" {
			errs = append(errs, fieldErr(field+".name", "must be set"))
		} else if j, ok := seen[a.Name]; ok {
			errs = append(errs, fieldErr(field+".name", "alias %q is already defined in spec.communities[%d]", a.Name, j))
		} else {
			seen[a.Name] = i
		}
		if _, err := ParseCommunity(a.Value); err != nil {
			errs = append(errs, fieldErr(field+".value", "alias %q: %s", a.Name, err.Error()))
		}
	}
	return errors.Join(errs...)
}

// DuplicateAliases rejects aliases of c that another Community object
// defines too; MetalLB refuses any second definition of a name, even with
// the same value, since which one wins would depend on listing order.
func DuplicateAliases(c *v1beta1.Community, others []v1beta1.Community) error {
	owner := map[string]string{}
	for _, o := range others {
		if o.Name == c.Name {
			continue
		}
		for _, a := range o.Spec.Communities {
			owner[a.Name] = o.Name
		}
	}
	var errs []error
	for i, a := range c.Spec.Communities {
		if o, ok := owner[a.Name]; ok {
			errs = append(errs, fieldErr(fmt.Sprintf("spec.communities[%d].name", i), "alias %q is already defined in Community %q", a.Name, o))
		}
	}
	return errors.Join(errs...)
}

// Aliases collects the alias name -> value map of Community objects (the
// first definition of a name wins).
func Aliases(cs []v1beta1.Community) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		for _, a := range c.Spec.Communities {
			if _, ok := out[a.Name]; !ok {
				out[a.Name] = a.Value
			}
		}
	}
	return out
}
