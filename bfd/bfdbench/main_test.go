package main

import (
	"testing"
	"time"
)

func TestParseProfiles(t *testing.T) {
	got, err := parseProfiles("300x3, 50x3")
	if err != nil || len(got) != 2 || got[0] != (benchProfile{300, 3}) || got[1] != (benchProfile{50, 3}) {
		t.Fatalf("parseProfiles = %+v, %v", got, err)
	}
	if got[0].detection() != 900*time.Millisecond || got[1].String() != "50ms x 3" {
		t.Fatalf("derived values %v %q", got[0].detection(), got[1])
	}
	for _, bad := range []string{"", "300", "300x", "x3", "5x3", "300x1", "300x3,abc"} {
		if _, err := parseProfiles(bad); err == nil {
			t.Errorf("parseProfiles(%q) accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 20; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct{ p, want int }{{50, 10}, {99, 20}, {100, 20}, {5, 1}, {0, 1}} {
		if got := percentile(s, tc.p); got != time.Duration(tc.want) {
			t.Errorf("p%d = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("single sample p99 = %d", got)
	}
}
