package backend

import (
	"reflect"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

func TestReferenceFRR(t *testing.T) {
	frr, ref := ReferenceFRR(9*time.Second), Reference(9*time.Second)
	if err := frr.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := frr.FlavourOf("tor1"); got != topology.FlavourFRR {
		t.Errorf("tor1 flavour %q, want frr", got)
	}
	if got := frr.FlavourOf("tor2"); got != topology.FlavourGoBGP {
		t.Errorf("tor2 flavour %q, want gobgp", got)
	}
	// Apart from the flavour, the roles are Reference's.
	roles := frr.Roles()
	for i := range roles {
		roles[i].Flavour = ref.Roles()[i].Flavour
	}
	if !reflect.DeepEqual(roles, ref.Roles()) {
		t.Errorf("roles %+v, want Reference's %+v", frr.Roles(), ref.Roles())
	}
}
