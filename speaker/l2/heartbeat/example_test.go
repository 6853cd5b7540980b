package heartbeat_test

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
)

// The heartbeat feeds a liveness.Table (not safe for concurrent use, hence
// the lock): each datagram received is a renewal heard at its receipt time.
// The peers come from the Nodes' InternalIPs and are replaced whenever the
// Nodes change.
func ExampleHeartbeat_Run() {
	hb, err := heartbeat.New(heartbeat.Config{Node: "node-a", Key: []byte("from a Secret")}, slog.Default(), nil)
	if err != nil {
		panic(err)
	}
	table, err := liveness.New(liveness.Config{Threshold: 600 * time.Millisecond, Margin: 100 * time.Millisecond,
		Rejoin: time.Second, MaxTickGap: 300 * time.Millisecond}, "node-a", time.Now())
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	hb.SetPeers([]heartbeat.Peer{
		{Node: "node-b", Addr: netip.MustParseAddr("192.0.2.2")},
		{Node: "node-c", Addr: netip.MustParseAddr("2001:db8::3")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = hb.Run(ctx, func(node string, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		table.Heard(node, at)
	})
}
