package bgp

import (
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/speaker/announce"
)

func c(s string) announce.Community {
	x, err := announce.ParseCommunity(s)
	if err != nil {
		panic(err)
	}
	return x
}

func r(peer, prefix string, lp uint32, comms ...string) announce.Route {
	rt := announce.Route{Peer: peer, Prefix: netip.MustParsePrefix(prefix), LocalPref: lp}
	for _, s := range comms {
		rt.Communities = append(rt.Communities, c(s))
	}
	return rt
}

func fmtChanges(cs []change) []string {
	var out []string
	for _, ch := range cs {
		s := ch.peer + " " + ch.prefix.String()
		if ch.attrs == nil {
			s += " withdraw"
		} else {
			s += " add"
			if ch.attrs.LocalPref != 0 {
				s += " lp=" + itoa(ch.attrs.LocalPref)
			}
			for _, cm := range ch.attrs.Communities {
				s += " " + cm.String()
			}
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func itoa(v uint32) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			return string(b)
		}
	}
}

func TestTableApply(t *testing.T) {
	type step struct {
		svc     string
		routes  []announce.Route
		want    []string
		wantErr string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "add, unchanged, change attrs, withdraw",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0), r("tor2", "203.0.113.5/32", 0)},
					want: []string{"tor1 203.0.113.5/32 add", "tor2 203.0.113.5/32 add"}},
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0), r("tor2", "203.0.113.5/32", 0)}, want: nil},
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0, "1:1"), r("tor2", "203.0.113.5/32", 0)},
					want: []string{"tor1 203.0.113.5/32 add 1:1"}},
				{svc: "a", routes: []announce.Route{r("tor2", "203.0.113.5/32", 0)}, want: []string{"tor1 203.0.113.5/32 withdraw"}},
				{svc: "a", routes: nil, want: []string{"tor2 203.0.113.5/32 withdraw"}},
			},
		},
		{
			name: "one service's change does not touch another's routes",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.5/32", 0)}, want: []string{"tor1 203.0.113.5/32 add"}},
				{svc: "b", routes: []announce.Route{r("tor1", "203.0.113.6/32", 0)}, want: []string{"tor1 203.0.113.6/32 add"}},
				{svc: "b", routes: nil, want: []string{"tor1 203.0.113.6/32 withdraw"}},
			},
		},
		{
			name: "aggregated prefix shared by services: union of communities, withdrawn with the last",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("tor1", "203.0.113.0/24", 0, "1:1")}, want: []string{"tor1 203.0.113.0/24 add 1:1"}},
				{svc: "b", routes: []announce.Route{r("tor1", "203.0.113.0/24", 0, "2:2")}, want: []string{"tor1 203.0.113.0/24 add 1:1 2:2"}},
				{svc: "a", routes: nil, want: []string{"tor1 203.0.113.0/24 add 2:2"}},
				{svc: "b", routes: nil, want: []string{"tor1 203.0.113.0/24 withdraw"}},
			},
		},
		{
			name: "conflicting local-pref across services sharing a prefix is rejected and changes nothing",
			steps: []step{
				{svc: "a", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 100)}, want: []string{"ibgp 203.0.113.0/24 add lp=100"}},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 200), r("ibgp", "198.51.100.1/32", 0)},
					wantErr: "localPref 200 conflicts with 100 from service a"},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 100)}, want: nil},
				{svc: "a", routes: nil, want: nil},
				{svc: "b", routes: []announce.Route{r("ibgp", "203.0.113.0/24", 200)}, want: []string{"ibgp 203.0.113.0/24 add lp=200"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTable()
			for i, s := range tt.steps {
				got, err := tb.apply(s.svc, s.routes)
				if s.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), s.wantErr) {
						t.Fatalf("step %d: err %v, want %q", i, err, s.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if g := fmtChanges(got); !reflect.DeepEqual(g, s.want) {
					t.Fatalf("step %d: got %q want %q", i, g, s.want)
				}
			}
			// After all steps the table must hold nothing for withdrawn services.
			for peer, pt := range tb.peers {
				for p, e := range pt {
					if len(e.contrib) == 0 {
						t.Errorf("leftover empty entry %s %s", peer, p)
					}
				}
			}
		})
	}
}
