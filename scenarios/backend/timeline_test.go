package backend

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/reports"
)

// historyOnly answers History, Events and Topology; any other call panics
// (the embedded nil interface).
type historyOnly struct {
	Backend
	topo    Topology
	changes map[string][]Change
	events  map[string][]Event
}

func (h historyOnly) Topology() Topology { return h.topo }
func (h historyOnly) History(_ context.Context, tor string) ([]Change, error) {
	return h.changes[tor], nil
}
func (h historyOnly) Events(_ context.Context, tor string) ([]Event, error) {
	return h.events[tor], nil
}

func TestTimeline(t *testing.T) {
	topo := Reference(9 * time.Second)
	n1, n2 := topo.Addrs("node1")[0], topo.Addrs("node2")[0]
	web := netip.MustParsePrefix("203.0.113.5/32")
	other := netip.MustParsePrefix("203.0.113.6/32")
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	b := historyOnly{topo: topo,
		changes: map[string][]Change{
			"tor1": {
				{Prefix: web, At: t0.Add(-time.Second), New: []netip.Addr{n1, n2}},
				{Prefix: other, At: t0.Add(100 * time.Millisecond), New: []netip.Addr{n1}},
				{Prefix: web, At: t0.Add(900 * time.Millisecond), New: []netip.Addr{n1}},
			},
		},
		events: map[string][]Event{
			"tor1": {{At: t0.Add(899 * time.Millisecond), Kind: control.EventBFD, Peer: n2, Old: "Up", New: "Down", Detail: "detect time expired"}},
		},
	}
	fault := reports.Event{At: t0, Label: "fault: cut-link node2"}
	tl, err := Timeline(context.Background(), b, "web", web, t0.Add(-500*time.Millisecond), time.Time{}, []reports.Event{fault})
	if err != nil {
		t.Fatal(err)
	}
	var lanes []string
	for _, l := range tl.Lanes {
		var evs []string
		for _, e := range l.Events {
			evs = append(evs, e.Label)
		}
		lanes = append(lanes, l.Name+": "+strings.Join(evs, "; "))
	}
	got := strings.Join(lanes, "\n")
	want := "faults: fault: cut-link node2\ntor1: BFD node2: Up → Down (detect time expired); -node2\ntor2: "
	if got != want {
		t.Errorf("lanes:\n%s\nwant:\n%s", got, want)
	}
	if len(tl.Series) != 2 || len(tl.Series[0].Points) != 2 || tl.Series[0].Points[0].Value != 2 || tl.Series[0].Points[1].Value != 1 {
		t.Errorf("tor1 series %+v", tl.Series)
	}
}
