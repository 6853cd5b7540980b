package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// FaultTopology is the reference topology with BFD (300 ms x 3) on both ToRs
// for every node (backend.BFDEverywhere), hold time 90 s.
func FaultTopology() topology.Topology { return backend.BFDEverywhere(90 * time.Second).Topology }

// SpeakerPID is the process id of a node's running speaker (0: none).
func (l *Lab) SpeakerPID(node string) int {
	p := l.speakers[node]
	if p == nil {
		return 0
	}
	if exited, _ := p.Exited(); exited {
		return 0
	}
	return p.PID()
}

// FreezeSpeaker stops a node's speaker process with SIGSTOP (a hung
// process: its sockets stay open, nothing is sent) and returns once the kernel
// reports it stopped, with the time the signal was sent.
func (l *Lab) FreezeSpeaker(ctx context.Context, node string) (time.Time, error) {
	pid := l.SpeakerPID(node)
	if pid == 0 {
		return time.Time{}, fmt.Errorf("speaker on %s is not running", node)
	}
	l.mark(&l.frozenSpeakers, node, true)
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return at, fmt.Errorf("SIGSTOP speaker on %s: %w", node, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return at, proc.WaitStopped(wctx, pid)
}

// ThawSpeaker resumes a frozen speaker (SIGCONT) and returns when.
func (l *Lab) ThawSpeaker(node string) (time.Time, error) {
	pid := l.SpeakerPID(node)
	if pid == 0 {
		return time.Time{}, fmt.Errorf("speaker on %s is not running", node)
	}
	at := time.Now()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		return at, err
	}
	l.mark(&l.frozenSpeakers, node, false)
	return at, nil
}

// RestartSpeaker stops a node's speaker gracefully (SIGTERM) and starts it
// again; it returns the time the new process was started.
func (l *Lab) RestartSpeaker(node string) (time.Time, error) {
	l.StopSpeaker(node)
	at := time.Now()
	return at, l.StartSpeaker(node)
}

// SpeakerLogTail returns the last lines of a node's speaker log.
func (l *Lab) SpeakerLogTail(node string, lines int) string {
	if p := l.speakers[node]; p != nil {
		return p.Tail(lines)
	}
	return ""
}

// ToRNames lists the fabric's ToRs.
func (l *Lab) ToRNames() []string {
	var out []string
	for _, t := range l.Fabric.Topology().ToRs {
		out = append(out, t.Name)
	}
	return out
}

// Diagnose describes the state of the fabric and the speakers for a failure
// message: each ToR's RIB history of the prefixes since `since`, its BGP
// neighbors and BFD sessions, its neighbor events since `since`, and the tail
// of the named nodes' speaker logs.
func (l *Lab) Diagnose(ctx context.Context, since time.Time, prefixes []netip.Prefix, nodes ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b strings.Builder
	names := map[netip.Addr]string{}
	for _, n := range l.Fabric.Topology().Nodes {
		names[n.Address] = n.Name
	}
	name := func(a netip.Addr) string {
		if n := names[a]; n != "" {
			return n
		}
		return a.String()
	}
	hops := func(as []netip.Addr) string {
		s := make([]string, len(as))
		for i, a := range as {
			s[i] = name(a)
		}
		return "{" + strings.Join(s, ",") + "}"
	}
	fmt.Fprintf(&b, "\n===== session state history since %s =====\n", since.Format("15:04:05.000"))
	for _, tor := range l.ToRNames() {
		fmt.Fprintf(&b, "--- %s: RIB history\n", tor)
		hist, err := l.Fabric.History(ctx, tor, 0)
		if err != nil {
			fmt.Fprintf(&b, "  (history: %v)\n", err)
		}
		for _, c := range hist {
			if c.At.Before(since) || (len(prefixes) > 0 && !slices.Contains(prefixes, c.Prefix)) {
				continue
			}
			fmt.Fprintf(&b, "  %s %-8s %s %s → %s\n", c.At.Format("15:04:05.000000"), c.Kind, c.Prefix, hops(c.Old), hops(c.New))
		}
		fmt.Fprintf(&b, "--- %s: BGP neighbors\n", tor)
		if ns, err := l.Fabric.Neighbors(ctx, tor); err != nil {
			fmt.Fprintf(&b, "  (neighbors: %v)\n", err)
		} else {
			for _, n := range ns {
				fmt.Fprintf(&b, "  %-6s %-15s %-12s admin-down=%v bfd=%s since=%s accepted=%d\n", n.Name, n.Address, n.State,
					n.AdminDown, n.BFD, n.Since.Format("15:04:05.000"), n.Accepted)
			}
		}
		fmt.Fprintf(&b, "--- %s: BFD sessions\n", tor)
		if ss, err := l.Fabric.BFDPeers(ctx, tor); err != nil {
			fmt.Fprintf(&b, "  (bfd: %v)\n", err)
		} else {
			for _, s := range ss {
				fmt.Fprintf(&b, "  %-6s %-9s remote=%-9s diag=%q remote-diag=%q last-change=%s in=%d out=%d\n", name(s.Peer), s.State,
					s.RemoteState, s.LocalDiag, s.RemoteDiag, s.LastChange.Format("15:04:05.000"), s.PacketsIn, s.PacketsOut)
			}
		}
		fmt.Fprintf(&b, "--- %s: BGP/BFD events\n", tor)
		if evs, err := l.Fabric.Events(ctx, tor, 0); err == nil {
			for _, e := range evs {
				if e.At.Before(since) {
					continue
				}
				fmt.Fprintf(&b, "  %s %s %-6s %s → %s %s\n", e.At.Format("15:04:05.000000"), e.Kind, name(e.Peer), e.Old, e.New, e.Detail)
			}
		}
	}
	for _, n := range nodes {
		fmt.Fprintf(&b, "--- speaker on %s (pid %d): log tail\n%s\n", n, l.SpeakerPID(n), l.SpeakerLogTail(n, 40))
	}
	if err := l.CheckAlive(); err != nil {
		fmt.Fprintf(&b, "--- processes\n%v\n", err)
	}
	return b.String()
}
