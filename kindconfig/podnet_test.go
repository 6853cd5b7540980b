package kindconfig

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestCNIConfig(t *testing.T) {
	b, err := CNIConfig(netip.MustParsePrefix("10.244.1.7/24"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IsGateway bool   `json:"isGateway"`
			IPMasq    bool   `json:"ipMasq"`
			IPAM      struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[1].Type != "portmap" {
		t.Fatalf("plugins %+v", conf.Plugins)
	}
	br := conf.Plugins[0]
	if br.Bridge != PodBridge || !br.IsGateway || br.IPMasq || br.IPAM.Type != "host-local" {
		t.Errorf("bridge plugin %+v", br)
	}
	// The subnet is the masked prefix.
	if got := br.IPAM.Ranges[0][0]["subnet"]; got != "10.244.1.0/24" {
		t.Errorf("subnet %q", got)
	}
	if len(PodBridge) > 15 {
		t.Errorf("bridge name %q longer than 15", PodBridge)
	}
}

func TestCNIConfigRejects(t *testing.T) {
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("fd00::/64"), netip.MustParsePrefix("10.0.0.0/31")} {
		if _, err := CNIConfig(p); err == nil {
			t.Errorf("%v: no error", p)
		}
	}
}

func nn(name, ip, cidr string) NodeNet {
	return NodeNet{Name: name, IP: netip.MustParseAddr(ip), PodCIDR: netip.MustParsePrefix(cidr)}
}

func TestPodRoutes(t *testing.T) {
	nodes := []NodeNet{
		nn("w2", "172.18.0.4", "10.244.2.0/24"),
		nn("cp", "172.18.0.2", "10.244.0.0/24"),
		nn("w1", "172.18.0.3", "10.244.1.0/24"),
	}
	got, err := PodRoutes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	r := func(dst, via string) Route {
		return Route{Dst: netip.MustParsePrefix(dst), Via: netip.MustParseAddr(via)}
	}
	want := map[string][]Route{
		"cp": {r("10.244.1.0/24", "172.18.0.3"), r("10.244.2.0/24", "172.18.0.4")},
		"w1": {r("10.244.0.0/24", "172.18.0.2"), r("10.244.2.0/24", "172.18.0.4")},
		"w2": {r("10.244.0.0/24", "172.18.0.2"), r("10.244.1.0/24", "172.18.0.3")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}

	single, err := PodRoutes(nodes[:1])
	if err != nil || len(single["w2"]) != 0 {
		t.Errorf("one node: %v, %v", single, err)
	}
}

func TestPodRoutesRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []NodeNet
		want  string
	}{
		{"no name", []NodeNet{nn("", "172.18.0.2", "10.244.0.0/24")}, "no name"},
		{"duplicate name", []NodeNet{nn("a", "172.18.0.2", "10.244.0.0/24"), nn("a", "172.18.0.3", "10.244.1.0/24")}, "twice"},
		{"duplicate ip", []NodeNet{nn("a", "172.18.0.2", "10.244.0.0/24"), nn("b", "172.18.0.2", "10.244.1.0/24")}, "also node a"},
		{"overlap", []NodeNet{nn("a", "172.18.0.2", "10.244.0.0/16"), nn("b", "172.18.0.3", "10.244.1.0/24")}, "overlaps"},
		{"no cidr", []NodeNet{{Name: "a", IP: netip.MustParseAddr("172.18.0.2")}}, "pod CIDR"},
		{"ipv6 address", []NodeNet{nn("a", "fd00::2", "10.244.0.0/24")}, "not IPv4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PodRoutes(tc.nodes)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
