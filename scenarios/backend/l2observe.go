package backend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/internal/netns"
)

// L2Observer is the part of L2 that only needs the fabric's L2 client: the
// lab and kind both watch the client's neighbour entries with it (the
// watch started at Up, so a change before a call is on record).
type L2Observer struct {
	Fabric *fabric.Fabric
	Watch  *netns.NeighWatch // nil without an L2 segment
}

// L2Probe is how often WaitL2Owner sends the Service IP a datagram from
// the L2 client while it waits.
const L2Probe = 100 * time.Millisecond

// WaitL2Owner implements L2.WaitL2Owner: WaitL2OwnerOf for one node.
func (o L2Observer) WaitL2Owner(ctx context.Context, ip netip.Addr, node string, since time.Time, flush bool) (time.Time, error) {
	_, at, err := o.WaitL2OwnerOf(ctx, ip, []string{node}, since, flush)
	return at, err
}

// L2Owned tells whether the neighbour events leave ip resolved to mac,
// and since when: the event that gave the entry that MAC (after a deletion,
// a failure or another MAC), or since when that was earlier. fresh
// requires that event at or after since (the entry was flushed then: its
// deletion may not be on record yet).
func L2Owned(evs []netns.NeighEvent, ip netip.Addr, mac net.HardwareAddr, since time.Time, fresh bool) (time.Time, bool) {
	_, at, ok := L2OwnedBy(evs, ip, map[string]string{mac.String(): ""}, since, fresh)
	return at, ok
}

// DiagnoseL2 implements L2.DiagnoseL2.
func (o L2Observer) DiagnoseL2(ip netip.Addr, since time.Time) string {
	var s strings.Builder
	fmt.Fprintf(&s, "\n===== the L2 client's neighbour entry for %v since %s =====\n", ip, since.Format("15:04:05.000"))
	if o.Watch == nil {
		return s.String() + "  (no l2 segment)\n"
	}
	evs, err := o.Watch.Events()
	if err != nil {
		fmt.Fprintf(&s, "  (subscription: %v)\n", err)
	}
	for _, e := range evs {
		if e.IP == ip && !e.At.Before(since) {
			fmt.Fprintf(&s, "  %s\n", o.describe(e))
		}
	}
	return s.String()
}

// describe is a neighbour event with the node its MAC names.
func (o L2Observer) describe(e netns.NeighEvent) string {
	if node := o.Fabric.L2NodeOfMAC(e.MAC); node != "" {
		return e.String() + " (" + node + ")"
	}
	return e.String()
}
