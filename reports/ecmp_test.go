package reports

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestECMPTimeline(t *testing.T) {
	t0 := sampleBase
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	all := []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}
	tor1 := ToRHistory{
		ToR: "tor1",
		Sets: []NextHopSet{
			{At: at(710), NextHops: []string{"10.0.0.13", "10.0.0.11"}},
			{At: at(-5000), NextHops: []string{"10.0.0.11"}},
			{At: at(-2000), NextHops: all},
			{At: at(4000), NextHops: all},
			{At: at(60000), NextHops: nil}, // after the window
		},
		Events: []Event{
			{At: at(700), Label: "BFD 10.0.0.12 up → down", Kind: KindBFD},
			{At: at(-100000), Label: "before the window", Kind: KindBGP},
		},
	}
	tor2 := ToRHistory{ToR: "tor2", Sets: []NextHopSet{{At: at(-3000), NextHops: all}}}
	tor3 := ToRHistory{ToR: "tor3", Sets: []NextHopSet{{At: at(100), NextHops: []string{"10.0.0.11"}}, {At: at(200)}}}
	faults := []Event{
		{At: at(3900), Label: "node2 link repaired"},
		{At: at(0), Label: "node2 link cut", Kind: KindFault},
		{At: at(-99999), Label: "an earlier fault"},
	}
	tl := ECMPTimeline("node2 link cut", "203.0.113.5/32", at(-1000), at(30000), faults, []ToRHistory{tor1, tor2, tor3})

	if !tl.Start.Equal(at(0)) {
		t.Errorf("start %v, want the first fault in the window", tl.Start)
	}
	type lane struct{ name, events string }
	wantLanes := []lane{
		{"faults", "fault@0 node2 link cut | fault@3900 node2 link repaired"},
		{"tor1", "bfd@700 BFD 10.0.0.12 up → down | route@710 -10.0.0.12 | route@4000 +10.0.0.12"},
		{"tor2", ""},
		{"tor3", "route@100 +10.0.0.11 | route@200 withdrawn"},
	}
	if len(tl.Lanes) != len(wantLanes) {
		t.Fatalf("%d lanes, want %d", len(tl.Lanes), len(wantLanes))
	}
	for i, w := range wantLanes {
		var evs []string
		for _, e := range tl.Lanes[i].Events {
			evs = append(evs, fmt.Sprintf("%s@%d %s", e.Kind, e.At.Sub(t0).Milliseconds(), e.Label))
		}
		if got := strings.Join(evs, " | "); tl.Lanes[i].Name != w.name || got != w.events {
			t.Errorf("lane %d = %s: %q, want %s: %q", i, tl.Lanes[i].Name, got, w.name, w.events)
		}
	}
	wantSeries := []struct{ name, points string }{
		{"tor1: next-hops for 203.0.113.5/32", "-1000=3 {10.0.0.11, 10.0.0.12, 10.0.0.13} | 710=2 {10.0.0.11, 10.0.0.13} | 4000=3 {10.0.0.11, 10.0.0.12, 10.0.0.13}"},
		{"tor2: next-hops for 203.0.113.5/32", "-1000=3 {10.0.0.11, 10.0.0.12, 10.0.0.13} (unchanged)"},
		{"tor3: next-hops for 203.0.113.5/32", "100=1 {10.0.0.11} | 200=0 withdrawn"},
	}
	if len(tl.Series) != len(wantSeries) {
		t.Fatalf("%d series", len(tl.Series))
	}
	for i, w := range wantSeries {
		var pts []string
		for _, p := range tl.Series[i].Points {
			pts = append(pts, fmt.Sprintf("%d=%v %s", p.At.Sub(t0).Milliseconds(), p.Value, p.Label))
		}
		if got := strings.Join(pts, " | "); tl.Series[i].Name != w.name || got != w.points {
			t.Errorf("series %d = %s: %q, want %s: %q", i, tl.Series[i].Name, got, w.name, w.points)
		}
	}

	// No faults in the window: the axis starts at the window, no fault lane.
	tl = ECMPTimeline("quiet", "p", at(0), time.Time{}, faults[2:], []ToRHistory{tor2})
	if !tl.Start.Equal(at(0)) || len(tl.Lanes) != 1 || tl.Lanes[0].Name != "tor2" {
		t.Errorf("quiet timeline: start %v lanes %+v", tl.Start, tl.Lanes)
	}
}

func TestSetChange(t *testing.T) {
	tests := []struct {
		prev, cur []string
		want      string
	}{
		{nil, []string{"a"}, "+a"},
		{[]string{"a", "b"}, []string{"a"}, "-b"},
		{[]string{"a", "b"}, []string{"b", "c"}, "-a +c"},
		{[]string{"a"}, nil, "withdrawn"},
		{[]string{"a"}, []string{"a"}, "re-announced {a}"},
	}
	for _, tt := range tests {
		if got := setChange(tt.prev, tt.cur); got != tt.want {
			t.Errorf("setChange(%q, %q) = %q, want %q", tt.prev, tt.cur, got, tt.want)
		}
	}
}
