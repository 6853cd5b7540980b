package app

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/bfd"
)

type fakeBFD []bfd.SessionInfo

func (f fakeBFD) Sessions() []bfd.SessionInfo { return f }

// dump renders the named families as "name{labels}=value type", sorted.
func dump(t *testing.T, reg *prometheus.Registry, prefix string) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, mf.GetName()+"{"+strings.Join(ls, ",")+"}="+strconv.FormatFloat(v, 'g', -1, 64)+" "+strings.ToLower(mf.GetType().String()))
		}
	}
	sort.Strings(out)
	return out
}

// metallb_bfd_* come from the BFD sessions' own counters at scrape time,
// labelled as MetalLB's FRR mode labels them (peer address, vrf).
func TestMetalLBBFDMetrics(t *testing.T) {
	key := func(local, peer string) bfd.PeerKey {
		return bfd.PeerKey{Local: netip.MustParseAddr(local), Peer: netip.MustParseAddr(peer)}
	}
	src := fakeBFD{
		{Key: key("10.0.0.21", "10.0.0.1"), State: bfd.StateUp, PacketsIn: 40, PacketsOut: 42,
			EchoPacketsIn: 7, EchoPacketsOut: 8, UpEvents: 2, DownEvents: 1},
		{Key: key("fd00::21", "fd00::1"), State: bfd.StateDown, PacketsOut: 5},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(bfdCollector{src})
	want := []string{
		"metallb_bfd_control_packet_input{peer=10.0.0.1,vrf=default}=40 counter",
		"metallb_bfd_control_packet_input{peer=fd00::1,vrf=default}=0 counter",
		"metallb_bfd_control_packet_output{peer=10.0.0.1,vrf=default}=42 counter",
		"metallb_bfd_control_packet_output{peer=fd00::1,vrf=default}=5 counter",
		"metallb_bfd_echo_packet_input{peer=10.0.0.1,vrf=default}=7 counter",
		"metallb_bfd_echo_packet_input{peer=fd00::1,vrf=default}=0 counter",
		"metallb_bfd_echo_packet_output{peer=10.0.0.1,vrf=default}=8 counter",
		"metallb_bfd_echo_packet_output{peer=fd00::1,vrf=default}=0 counter",
		"metallb_bfd_session_down_events{peer=10.0.0.1,vrf=default}=1 counter",
		"metallb_bfd_session_down_events{peer=fd00::1,vrf=default}=0 counter",
		"metallb_bfd_session_up{peer=10.0.0.1,vrf=default}=1 gauge",
		"metallb_bfd_session_up{peer=fd00::1,vrf=default}=0 gauge",
		"metallb_bfd_session_up_events{peer=10.0.0.1,vrf=default}=2 counter",
		"metallb_bfd_session_up_events{peer=fd00::1,vrf=default}=0 counter",
	}
	sort.Strings(want)
	if got := dump(t, reg, "metallb_bfd_"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Two sessions to one peer (from two local addresses) are one series.
	src = append(src, bfd.SessionInfo{Key: key("10.0.0.22", "10.0.0.1"), State: bfd.StateDown, PacketsIn: 1, UpEvents: 1, DownEvents: 1})
	reg = prometheus.NewRegistry()
	reg.MustRegister(bfdCollector{src})
	got := strings.Join(dump(t, reg, "metallb_bfd_"), "\n")
	for _, w := range []string{"metallb_bfd_control_packet_input{peer=10.0.0.1,vrf=default}=41 counter",
		"metallb_bfd_session_up{peer=10.0.0.1,vrf=default}=1 gauge", "metallb_bfd_session_down_events{peer=10.0.0.1,vrf=default}=2 counter"} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %s in\n%s", w, got)
		}
	}
}
