package app

import (
	"slices"
	"testing"
	"time"
)

// At a stop the BGP sessions close first; the BFD sessions go AdminDown
// bfdAfterBGP later, and at once when there are none.
func TestStopClosesBGPBeforeBFD(t *testing.T) {
	for _, tc := range []struct {
		sessions int
		want     []string
	}{
		{2, []string{"bgp", "wait 300ms", "bfd"}},
		{0, []string{"bgp", "bfd"}},
	} {
		var got []string
		stopInOrder(func() { got = append(got, "bgp") }, func() int { return tc.sessions },
			func() { got = append(got, "bfd") }, bfdAfterBGP,
			func(d time.Duration) { got = append(got, "wait "+d.String()) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%d BFD sessions: %v, want %v", tc.sessions, got, tc.want)
		}
	}
}
