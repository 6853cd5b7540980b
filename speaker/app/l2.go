package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecmplb/ecmplb/speaker/l2/heartbeat"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness/lease"
	"github.com/ecmplb/ecmplb/speaker/l2/mode"
	"github.com/ecmplb/ecmplb/speaker/l2/responder"
)

// L2Config configures layer 2 mode.
type L2Config struct {
	// Enabled runs layer 2 mode: the responder (CAP_NET_RAW) and the
	// heartbeat between speakers (UDP Port). Without L2Advertisements it
	// answers nothing; the heartbeat still runs.
	Enabled bool
	// Port and Interval of the heartbeat (defaults heartbeat.DefaultPort and
	// DefaultL2Interval); the same on every speaker.
	Port     int
	Interval time.Duration
	// KeyFile, when set, holds the heartbeat's shared key (every speaker
	// the same; a mounted Secret).
	KeyFile string
	// LeasePeriod is how often this speaker renews its Lease
	// (ecmplb-speaker-<node> in the speaker's namespace), which fences a
	// speaker cut off from the apiserver; the same on every speaker. 0:
	// no Leases (nothing fences such a speaker).
	LeasePeriod time.Duration
}

// DefaultL2Interval is the heartbeat period: with mode.DefaultLiveness, a
// silent speaker's IPs move 0.5-0.6 s after its last heartbeat.
const DefaultL2Interval = 100 * time.Millisecond

// l2Mode is layer 2 mode running: the watch feeds Runtime; stop ends it
// and returns once nothing is answered any more.
type l2Mode struct {
	Runtime *mode.Runtime
	stop    func()
}

// startL2 builds and runs layer 2 mode until ctx ends or stop is called.
// status, events and settled may be nil; settled is called once the
// runtime made its first choice with every input (mode.Options.OnSettled).
func startL2(ctx context.Context, c L2Config, node string, log *slog.Logger, reg prometheus.Registerer,
	events serviceEvents, status mode.StatusSink, settled func(), leases lease.Leases, namespace string) (*l2Mode, error) {
	if c.Interval == 0 {
		c.Interval = DefaultL2Interval
	}
	var key []byte
	if c.KeyFile != "" {
		b, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("layer 2 heartbeat key (--l2-heartbeat-key-file): %w", err)
		}
		if key = []byte(strings.TrimSpace(string(b))); len(key) == 0 {
			return nil, fmt.Errorf("layer 2 heartbeat key file %s is empty", c.KeyFile)
		}
	}
	var rt *mode.Runtime
	resp := responder.New(responder.Options{Logger: log.With("component", "l2-responder"), Registerer: reg,
		Gate: func() bool { return rt.Gate() }})
	hb, err := heartbeat.New(heartbeat.Config{Node: node, Port: c.Port, Interval: c.Interval, Key: key,
		Echoed:    func(n string, sent time.Time) { rt.Echoed(n, sent) },
		PeerState: func(n string, ok bool, at time.Time) { rt.PeerState(n, ok, at) }}, log, reg)
	if err != nil {
		_ = resp.Close()
		return nil, err
	}
	o := mode.Options{Node: node, Liveness: mode.DefaultLiveness(c.Interval), Responder: resp, Heartbeat: hb,
		Logger: log.With("component", "l2"), Registerer: reg, OnSettled: settled}
	if status != nil {
		o.Status = status
	}
	if c.LeasePeriod > 0 && leases != nil {
		o.Lease = &mode.LeaseOptions{Leases: leases, Namespace: namespace, Period: c.LeasePeriod,
			Liveness: mode.DefaultLeaseLiveness(c.LeasePeriod)}
	}
	if events != nil {
		o.Events = events
	}
	if rt, err = mode.New(o); err != nil {
		_ = resp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.Run(ctx); err != nil {
			log.Error("layer 2 mode", "err", err)
		}
		_ = resp.Close()
	}()
	return &l2Mode{Runtime: rt, stop: func() { cancel(); <-done }}, nil
}

// serviceEvents records layer 2 mode's Events on a Service by its key,
// through the watch's cached Service (watch.Controller.ServiceEvent), so
// they carry its UID.
type serviceEvents func(key, reason, msg string)

func (e serviceEvents) ServiceEvent(key, reason, msg string) { e(key, reason, msg) }
