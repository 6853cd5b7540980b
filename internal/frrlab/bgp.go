package frrlab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// BGPPath is one path of "show bgp <afi> unicast PREFIX json".
type BGPPath struct {
	Valid    bool `json:"valid"`
	Stale    bool `json:"stale"` // kept by a graceful-restart helper after its peer went (RFC 4724)
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
}

// BGPPaths returns bgpd's paths for prefix (none when it holds no route).
func (v *VTY) BGPPaths(ctx context.Context, prefix string) ([]BGPPath, error) {
	afi := "ipv4"
	if strings.Contains(prefix, ":") {
		afi = "ipv6"
	}
	cmd := "show bgp " + afi + " unicast " + prefix + " json"
	out, err := v.Run(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var r struct {
		Paths []BGPPath `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(out))
	}
	return r.Paths, nil
}

// BGPNeighbor is the part of "show bgp neighbors ADDRESS json" about the
// session and graceful restart (RFC 4724).
type BGPNeighbor struct {
	State          string `json:"bgpState"` // "Established", "Active", ...
	LastResetDueTo string `json:"lastResetDueTo"`
	GracefulInfo   struct {
		LocalMode  string `json:"localGrMode"`
		RemoteMode string `json:"remoteGrMode"`
		// RestartMsecs and StalePathMsecs are what is left of the helper's
		// restart and stale-path timers while they run (0 otherwise).
		RestartMsecs   int `json:"gracefulRestartTimerMsecs"`
		StalePathMsecs int `json:"gracefulStalepathTimerMsecs"`
		Timers         struct {
			ConfiguredRestart int `json:"configuredRestartTimer"`
			ReceivedRestart   int `json:"receivedRestartTimer"`
			RestartRemaining  int `json:"restartTimerRemaining"`
			StaleRemaining    int `json:"stalePathTimerRemaining"`
		} `json:"timers"`
	} `json:"gracefulRestartInfo"`
	Messages struct {
		NotificationsSent int `json:"notificationsSent"`
		NotificationsRecv int `json:"notificationsRecv"`
	} `json:"messageStats"`
	// Raw is the neighbor's whole JSON object, for logs.
	Raw json.RawMessage `json:"-"`
}

// BGPNeighbor returns bgpd's view of the neighbor at addr.
func (v *VTY) BGPNeighbor(ctx context.Context, addr string) (BGPNeighbor, error) {
	cmd := "show bgp neighbors " + addr + " json"
	out, err := v.Run(ctx, cmd)
	if err != nil {
		return BGPNeighbor{}, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		return BGPNeighbor{}, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(out))
	}
	raw, ok := all[addr]
	if !ok {
		return BGPNeighbor{}, fmt.Errorf("%s: no neighbor %s: %s", cmd, addr, strings.TrimSpace(out))
	}
	var n BGPNeighbor
	if err := json.Unmarshal(raw, &n); err != nil {
		return BGPNeighbor{}, fmt.Errorf("%s: %w", cmd, err)
	}
	n.Raw = raw
	return n, nil
}
