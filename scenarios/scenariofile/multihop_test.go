package scenariofile

import (
	"path/filepath"
	"strings"
	"testing"
)

// A BFD ToR's multihop and minimumTtl reach every node's profile; minimumTtl
// without multihop, out of range, and BFD ToRs that disagree on multihop are
// refused with the field named.
func TestParseMultihopBFD(t *testing.T) {
	text := strings.Replace(good, "bfd: {interval: 300ms, multiplier: 3}", "bfd: {interval: 300ms, multiplier: 3, multihop: true, minimumTtl: 250}", 1)
	s, err := parse(t, text)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Topology.Nodes {
		p := s.Topology.BFDProfiles[n.BFDProfile]
		if !n.BFDWith("tor1") || n.BFDWith("tor2") || !p.Multihop || p.MinimumTTL != 250 || p.TransmitInterval != 300 {
			t.Errorf("%s: profile %q %+v, BFD with %v", n.Name, n.BFDProfile, p, n.BFDToRs)
		}
	}
	for _, c := range []struct{ bfd, want string }{
		{"bfd: {interval: 300ms, minimumTtl: 250}", "tors[0].bfd.minimumTtl: needs multihop: true"},
		{"bfd: {multihop: true, minimumTtl: 255}", "tors[0].bfd.minimumTtl"},
		{"bfd: {multihop: yes please}", "tors[0].bfd.multihop"},
	} {
		text := strings.Replace(good, "bfd: {interval: 300ms, multiplier: 3}", c.bfd, 1)
		if _, err := parse(t, text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %q", c.bfd, err, c.want)
		}
	}
	text = strings.Replace(good, "{name: tor2, address: 10.0.0.2}", "{name: tor2, address: 10.0.0.2, bfd: {interval: 300ms, multiplier: 3, multihop: true}}", 1)
	if _, err := parse(t, text); err == nil || !strings.Contains(err.Error(), "every BFD ToR must run the same") {
		t.Errorf("single-hop tor1 and multi-hop tor2 accepted: %v", err)
	}
}

// The catalogue's multi-hop file runs multi-hop BFD on the BFD ToR only.
func TestParseMultihopCatalogue(t *testing.T) {
	s, err := Load(filepath.Join("..", "catalogue", "multihop-bfd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Topology.Nodes {
		if p := s.Topology.BFDProfiles[n.BFDProfile]; !p.Multihop {
			t.Errorf("%s: profile %+v is not multi-hop", n.Name, p)
		}
	}
}
