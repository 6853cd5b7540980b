// Package cli implements the `fabric` command's subcommands: it opens fabric instances,
// queries their routers and renders results as aligned text for people or JSON for
// machines.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/rib"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// Output selects the rendering.
type Output string

// Renderings.
const (
	Text Output = "text"
	JSON Output = "json"
)

// ParseOutput validates an -o value.
func ParseOutput(s string) (Output, error) {
	switch Output(s) {
	case Text, JSON:
		return Output(s), nil
	}
	return "", fmt.Errorf("-o %q: want text or json", s)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Truncate(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

func addrList(a []netip.Addr) string {
	if len(a) == 0 {
		return "-"
	}
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// RouteResult is one ToR's answer for `fabric route`.
type RouteResult struct {
	ToR     string       `json:"tor"`
	Address netip.Addr   `json:"address"`
	Route   *rib.ECMPSet `json:"route"`
	// Kernel holds the next-hops of the kernel FIB route in the ToR's namespace.
	Kernel []netip.Addr `json:"kernel"`
	Err    string       `json:"error,omitempty"`
}

func renderRoutes(w io.Writer, nodes []topology.Node, res []RouteResult, now time.Time) {
	names := map[netip.Addr]string{}
	for _, n := range nodes {
		names[n.Address] = n.Name
		if n.Address6.IsValid() {
			names[n.Address6] = n.Name
		}
	}
	for i, r := range res {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%s):\n", r.ToR, r.Address)
		switch {
		case r.Err != "":
			fmt.Fprintf(w, "  error: %s\n", r.Err)
			continue
		case r.Route == nil:
			fmt.Fprintf(w, "  %% Network not in table\n")
			continue
		}
		s := r.Route
		tw := table(w)
		for j, p := range s.Paths {
			lead := fmt.Sprintf("B>* %s [20/%d]", s.Prefix, p.MED)
			if j > 0 {
				lead = "  *"
			}
			label := names[p.NextHop]
			if label == "" {
				label = p.Peer.String()
			}
			fmt.Fprintf(tw, "%s\tvia %s,\t%s,\tweight 1,\t%s\t(%s, AS path %s)\n", lead, p.NextHop, fabric.SegmentInterface,
				ago(s.Since, now), label, asPath(p.ASPath))
		}
		tw.Flush()
		fmt.Fprintf(w, "  ECMP next-hops: %d, changed %s (%s ago); kernel FIB: %s\n", len(s.NextHops()),
			s.Since.UTC().Format("15:04:05.000000Z"), ago(s.Since, now), addrList(r.Kernel))
	}
}

func asPath(p []uint32) string {
	if len(p) == 0 {
		return "i"
	}
	s := make([]string, len(p))
	for i, a := range p {
		s[i] = fmt.Sprint(a)
	}
	return strings.Join(s, " ")
}

func renderNeighbors(w io.Writer, tor string, ns []control.Neighbor, now time.Time) {
	fmt.Fprintf(w, "%s:\n", tor)
	tw := table(w)
	fmt.Fprintln(tw, "Neighbor\tName\tAS\tState\tUp/Down\tMsgRcvd\tMsgSent\tPfxRcd\tPfxAcc\tHold\tBFD")
	for _, n := range ns {
		state := n.State
		if n.AdminDown {
			state += " (admin down)"
		}
		name := n.Name
		if n.Dynamic {
			name += "*"
		}
		bfd := n.BFD
		if bfd == "" {
			bfd = "-"
		}
		// Negotiated hold time, and what this ToR offers when the peer asked for less.
		hold := n.HoldTime.String()
		if n.ConfiguredHoldTime != 0 && n.ConfiguredHoldTime != n.HoldTime {
			hold += " (offers " + n.ConfiguredHoldTime.String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", n.Address, name, n.ASN, state, ago(n.Since, now),
			n.MsgIn, n.MsgOut, n.Received, n.Accepted, hold, bfd)
	}
	tw.Flush()
}

func renderBFD(w io.Writer, tor string, ss []control.BFDSession, now time.Time) {
	fmt.Fprintf(w, "%s:\n", tor)
	if len(ss) == 0 {
		fmt.Fprintln(w, "  no BFD sessions")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "Peer\tLocal\tState\tRemote\tTx\tDetect\tLocalDiag\tRemoteDiag\tChanged\tPktIn\tPktOut")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Peer, s.Local, s.State, s.RemoteState,
			s.TxInterval, s.DetectionTime, s.LocalDiag, s.RemoteDiag, ago(s.LastChange, now), s.PacketsIn, s.PacketsOut)
	}
	tw.Flush()
}

func renderHistory(w io.Writer, tor string, hs []rib.Change) {
	fmt.Fprintf(w, "%s:\n", tor)
	tw := table(w)
	fmt.Fprintln(tw, "Seq\tTime\tPrefix\tChange\tOld\tNew")
	for _, c := range hs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", c.Seq, c.At.UTC().Format("2006-01-02T15:04:05.000000Z"), c.Prefix, c.Kind,
			addrList(c.Old), addrList(c.New))
	}
	tw.Flush()
}

func renderEvents(w io.Writer, tor string, es []control.Event) {
	fmt.Fprintf(w, "%s:\n", tor)
	tw := table(w)
	fmt.Fprintln(tw, "Seq\tTime\tKind\tPeer\tOld\tNew\tDetail")
	for _, e := range es {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"), e.Kind, e.Peer,
			e.Old, e.New, e.Detail)
	}
	tw.Flush()
}

func renderInstances(w io.Writer, in []fabric.Instance, now time.Time) {
	tw := table(w)
	fmt.Fprintln(tw, "Instance\tTopology\tCreated\tRouters\tStatus\tDir")
	for _, i := range in {
		status := "running"
		if i.Stale {
			status = "stale"
		}
		if i.Err != "" {
			status = "broken: " + i.Err
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%d/%d\t%s\t%s\n", i.Name, i.Topology, ago(i.Created, now), i.RoutersAlive, i.Routers, status, i.Dir)
	}
	tw.Flush()
}
