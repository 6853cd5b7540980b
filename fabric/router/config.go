// Package router is a fabric ToR router: a GoBGP server with multipath, an ECMP RIB view
// with history, a kernel FIB programmer, BFD sessions towards the nodes that ask for
// them, and a control API on a Unix socket. It runs as its own process inside the
// router's network namespace (`fabric router --config FILE`), because GoBGP's multipath
// option is process-global and its sockets must be opened in the router's namespace.
package router

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Config is everything one router process needs; the fabric writes it as JSON.
type Config struct {
	// Name is the router's name in the topology.
	Name string `json:"name"`
	// Address is the router's segment address (BGP listen address and router ID).
	Address netip.Addr `json:"address"`
	// ASN is the router's AS number.
	ASN uint32 `json:"asn"`
	// GRPCAddress is where GoBGP's gRPC API listens (e.g. 127.0.0.1:50051); empty
	// disables it.
	GRPCAddress string `json:"grpcAddress,omitempty"`
	// ControlSocket is the Unix socket path of the control API.
	ControlSocket string `json:"controlSocket"`
	// Timers are the BGP session timers (the ToR's override on the topology's).
	Timers topology.BGPTimers `json:"timers"`
	// Neighbors are the configured (static) neighbors.
	Neighbors []Neighbor `json:"neighbors"`
	// DynamicRange, when valid, accepts any peer from this prefix with DynamicASN.
	DynamicRange netip.Prefix `json:"dynamicRange,omitzero"`
	DynamicASN   uint32       `json:"dynamicASN,omitempty"`
	// FIB enables programming the kernel FIB of the router's namespace.
	FIB bool `json:"fib"`
	// ExportToNodes lets the router advertise its table to the nodes. Off by default:
	// a node has no use for the other nodes' routes (it would drop them for the AS
	// loop anyway), and not sending them keeps large tables cheap.
	ExportToNodes bool `json:"exportToNodes,omitempty"`
	// Flavour is the ToR's implementation (topology.FlavourGoBGP when empty, or
	// topology.FlavourFRR: see FRR).
	Flavour string `json:"flavour,omitempty"`
	// NetNS is the name of the router's network namespace; an FRR router names
	// its daemons' pathspace after it, so instances never share one.
	NetNS string `json:"netns,omitempty"`
	// GracefulRestart: graceful-restart helper towards the nodes (see
	// topology.ToR).
	GracefulRestart bool `json:"gracefulRestart,omitempty"`
}

// Neighbor is one configured BGP neighbor. With BFD set, the router runs a BFD
// session towards it, and a BFD Down resets the BGP session at once.
type Neighbor = control.NeighborConfig

// ConfigFor derives the configuration of router tor from a topology.
func ConfigFor(t topology.Topology, tor, controlSocket string) (Config, error) {
	r, ok := t.ToR(tor)
	if !ok {
		return Config{}, fmt.Errorf("router %q is not in the topology", tor)
	}
	c := Config{
		Name:            r.Name,
		Address:         r.Address,
		ASN:             r.ASN,
		GRPCAddress:     fmt.Sprintf("127.0.0.1:%d", r.GRPCPort),
		ControlSocket:   controlSocket,
		Timers:          t.Timers(tor),
		FIB:             true,
		ExportToNodes:   t.ExportToNodes,
		Flavour:         r.RouterFlavour(),
		GracefulRestart: r.GracefulRestart,
	}
	for _, n := range t.Nodes {
		nb := Neighbor{Name: n.Name, Address: n.Address, ASN: n.ASN}
		if n.BFDWith(tor) {
			p := t.BFDProfiles[n.BFDProfile]
			nb.BFD = &p
		}
		c.Neighbors = append(c.Neighbors, nb)
	}
	if t.DynamicNeighbors {
		c.DynamicRange = t.Segment
		c.DynamicASN = t.DynamicNeighborASN
	}
	return c, nil
}

// LoadConfig reads a JSON config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("router config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("router config %s: %w", path, err)
	}
	if !c.Address.IsValid() || c.ASN == 0 || c.ControlSocket == "" {
		return Config{}, fmt.Errorf("router config %s: address, asn and controlSocket are required", path)
	}
	return c, nil
}

// Write stores the config as JSON.
func (c Config) Write(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
