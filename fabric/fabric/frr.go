package fabric

import (
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/frrlab"
)

// cleanFRR removes what the daemons of FRR ToRs keep outside their namespace:
// their pathspace's directories (and, should a daemon have outlived a killed
// router process, the daemon itself; KillLeftovers checks that a pid is an FRR
// daemon of that pathspace before it signals it). A router that stops
// gracefully has removed them already.
func (f *Fabric) cleanFRR() {
	for _, r := range f.state.Topology.ToRs {
		if r.RouterFlavour() == topology.FlavourFRR {
			frrlab.KillLeftovers(f.state.NetNS[r.Name])
		}
	}
}
