package router

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/frrlab"
)

func frrTestConfig(mut func(*Config)) Config {
	bfd := topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}
	c := Config{
		Name: "tor1", Address: addr("10.0.0.1"), ASN: 65000, Flavour: topology.FlavourFRR, FIB: true, NetNS: "elb-x-tor1",
		Timers: topology.BGPTimers{HoldTime: topology.Duration(90 * time.Second), KeepaliveInterval: topology.Duration(30 * time.Second),
			ConnectRetry: topology.Duration(time.Second), IdleHoldTimeAfterReset: topology.Duration(time.Second)},
		Neighbors: []Neighbor{
			{Name: "node1", Address: addr("10.0.0.21"), ASN: 65100, BFD: &bfd},
			{Name: "node 2", Address: addr("10.0.0.22"), ASN: 65000},
		},
	}
	if mut != nil {
		mut(&c)
	}
	return c
}

func TestFRRBGPConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    []string // lines (trimmed) the config must hold
		notWant []string
	}{
		{
			name: "neighbors, timers, multipath, nothing exported",
			cfg:  frrTestConfig(nil),
			want: []string{
				"router bgp 65000", "bgp router-id 10.0.0.1", "timers bgp 30 90", "no bgp ebgp-requires-policy",
				"bgp bestpath as-path multipath-relax",
				"neighbor 10.0.0.21 remote-as 65100", "neighbor 10.0.0.21 passive", "neighbor 10.0.0.21 update-source 10.0.0.1", "neighbor 10.0.0.21 timers 30 90",
				"neighbor 10.0.0.21 timers connect 1", "neighbor 10.0.0.21 bfd", "neighbor 10.0.0.21 bfd profile ecmplb-300-300-3",
				"neighbor 10.0.0.21 description node1",
				"neighbor 10.0.0.22 remote-as 65000", "neighbor 10.0.0.22 description node_2",
				"address-family ipv4 unicast", "address-family ipv6 unicast", "maximum-paths 64", "maximum-paths ibgp 64",
				"neighbor 10.0.0.22 activate", "neighbor 10.0.0.22 route-map ecmplb-in in", "neighbor 10.0.0.22 route-map ecmplb-out out",
				"route-map ecmplb-out deny 10", "set ipv6 next-hop prefer-global",
			},
			notWant: []string{"neighbor 10.0.0.22 bfd", "bgp listen range", "route-map ecmplb-out permit 10"},
		},
		{
			name: "dynamic neighbors and export to nodes",
			cfg: frrTestConfig(func(c *Config) {
				c.DynamicRange, c.DynamicASN, c.ExportToNodes = pfx("10.0.0.0/24"), 65100, true
			}),
			want: []string{
				"neighbor ecmplb-dynamic peer-group", "neighbor ecmplb-dynamic remote-as 65100", "neighbor ecmplb-dynamic passive",
				"bgp listen range 10.0.0.0/24 peer-group ecmplb-dynamic", "neighbor ecmplb-dynamic activate",
				"route-map ecmplb-out permit 10",
			},
			notWant: []string{"route-map ecmplb-out deny 10"},
		},
		{
			name: "graceful-restart helper towards every node, 120 s like the GoBGP ToR",
			cfg: frrTestConfig(func(c *Config) {
				c.GracefulRestart, c.DynamicRange, c.DynamicASN = true, pfx("10.0.0.0/24"), 65100
			}),
			want: []string{
				"bgp graceful-restart restart-time 120",
				"neighbor 10.0.0.21 graceful-restart-helper", "neighbor 10.0.0.22 graceful-restart-helper",
				"neighbor ecmplb-dynamic graceful-restart-helper",
			},
			notWant: []string{"neighbor 10.0.0.21 graceful-restart-disable", "neighbor ecmplb-dynamic graceful-restart-disable"},
		},
		{
			// Debian's bgpd is a helper by default: without gracefulRestart the
			// FRR ToR must not be one, as the GoBGP ToR is not.
			name: "no graceful restart unless asked",
			cfg: frrTestConfig(func(c *Config) {
				c.DynamicRange, c.DynamicASN = pfx("10.0.0.0/24"), 65100
			}),
			want: []string{
				"neighbor 10.0.0.21 graceful-restart-disable", "neighbor 10.0.0.22 graceful-restart-disable",
				"neighbor ecmplb-dynamic graceful-restart-disable",
			},
			notWant: []string{"bgp graceful-restart restart-time 120", "neighbor 10.0.0.21 graceful-restart-helper"},
		},
		{
			name: "multi-hop BFD: the eBGP node is ebgp-multihop, the iBGP one needs nothing",
			cfg: frrTestConfig(func(c *Config) {
				mh := topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3, Multihop: true}
				c.Neighbors[0].BFD = &mh
				c.Neighbors[1].BFD = &mh
			}),
			want: []string{
				"neighbor 10.0.0.21 ebgp-multihop 255", "neighbor 10.0.0.21 bfd", "neighbor 10.0.0.21 bfd profile ecmplb-300-300-3-multihop",
				"neighbor 10.0.0.22 bfd profile ecmplb-300-300-3-multihop",
			},
			notWant: []string{"neighbor 10.0.0.22 ebgp-multihop 255"},
		},
		{
			name: "short timers are clamped as for GoBGP",
			cfg: frrTestConfig(func(c *Config) {
				c.Timers.HoldTime, c.Timers.KeepaliveInterval = topology.Duration(time.Second), 0
			}),
			want: []string{"timers bgp 1 3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := frrBGPConfig(tc.cfg)
			lines := map[string]bool{}
			for _, l := range strings.Split(conf, "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tc.want {
				if !lines[w] {
					t.Errorf("missing %q in\n%s", w, conf)
				}
			}
			for _, w := range tc.notWant {
				if lines[w] {
					t.Errorf("unexpected %q in\n%s", w, conf)
				}
			}
			frrCheck(t, "bgpd", conf)
		})
	}
}

func TestFRRBFDConfig(t *testing.T) {
	c := frrTestConfig(func(c *Config) {
		c.Neighbors = append(c.Neighbors, Neighbor{Name: "node3", Address: addr("10.0.0.23"), ASN: 65100,
			BFD: &topology.BFDProfile{ReceiveInterval: 50, TransmitInterval: 60, DetectMultiplier: 4, PassiveMode: true}})
	})
	conf := frrBFDConfig(c)
	for _, w := range []string{
		"profile ecmplb-300-300-3", "receive-interval 300", "transmit-interval 300", "detect-multiplier 3",
		"peer 10.0.0.21 local-address 10.0.0.1", "profile ecmplb-50-60-4-passive", "passive-mode",
		"peer 10.0.0.23 local-address 10.0.0.1",
	} {
		if !strings.Contains(conf, "\n "+w+"\n") {
			t.Errorf("missing %q in\n%s", w, conf)
		}
	}
	if strings.Contains(conf, "10.0.0.22") {
		t.Errorf("node 2 runs no BFD, yet:\n%s", conf)
	}
	if strings.Contains(conf, "multihop") || strings.Contains(conf, "minimum-ttl") {
		t.Errorf("single-hop sessions only, yet:\n%s", conf)
	}
	frrCheck(t, "bfdd", conf)
	frrCheck(t, "zebra", frrZebraConfig(c))
}

func TestFRRBFDConfigMultihop(t *testing.T) {
	c := frrTestConfig(func(c *Config) {
		c.Neighbors[0].BFD = &topology.BFDProfile{ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3, Multihop: true}
		c.Neighbors = append(c.Neighbors, Neighbor{Name: "node3", Address: addr("10.0.0.23"), ASN: 65100,
			BFD: &topology.BFDProfile{ReceiveInterval: 100, TransmitInterval: 100, DetectMultiplier: 3, Multihop: true, MinimumTTL: 250}})
	})
	conf := frrBFDConfig(c)
	for _, w := range []string{
		"profile ecmplb-300-300-3-multihop", "peer 10.0.0.21 multihop local-address 10.0.0.1",
		"profile ecmplb-100-100-3-multihop-ttl250", "minimum-ttl 250", "peer 10.0.0.23 multihop local-address 10.0.0.1",
	} {
		if !strings.Contains(conf, "\n "+w+"\n") {
			t.Errorf("missing %q in\n%s", w, conf)
		}
	}
	if strings.Contains(conf, "peer 10.0.0.21 local-address") {
		t.Errorf("node1 is multi-hop, yet a single-hop peer:\n%s", conf)
	}
	frrCheck(t, "bfdd", conf)
}

// frrCheck has the real daemon read conf in its dry-run mode (-C), which logs
// every line it does not take.
func frrCheck(t *testing.T, daemon, conf string) {
	t.Helper()
	if !frrlab.Installed() {
		if os.Getenv("ECMPLB_REQUIRE_FRR") != "" {
			t.Fatal("FRR is not installed and ECMPLB_REQUIRE_FRR is set")
		}
		t.Log("FRR is not installed: configuration not checked by the daemon")
		return
	}
	// The daemon reads the file as user frr: t.TempDir's parent is private.
	dir, err := os.MkdirTemp("", "ecmplb-frrcheck")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, daemon+".conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(frrlab.FRRDir, daemon), "-C", "-f", f).CombinedOutput()
	var refused []string
	for _, l := range strings.Split(string(out), "\n") {
		// zebra warns about the machine, not the configuration.
		if strings.Contains(l, "[EC ") && !strings.Contains(l, "MPLS support") {
			refused = append(refused, l)
		}
	}
	if err != nil || len(refused) > 0 {
		t.Errorf("%s -C refuses the configuration: %v\n%s\n%s", daemon, err, strings.Join(refused, "\n"), conf)
	}
}
