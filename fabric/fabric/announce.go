package fabric

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/ecmplb/ecmplb/fabric/announcer"
	"github.com/ecmplb/ecmplb/fabric/topology"
)

// AnnouncerOptions configures a test announcer.
type AnnouncerOptions struct {
	// Prefixes are announced at start.
	Prefixes []netip.Prefix
	// HoldTime of its sessions (default: the longest hold time a ToR offers, so
	// every session negotiates its ToR's own hold time).
	HoldTime time.Duration
	// BFD, when set, runs BFD towards every ToR (the ToRs only run BFD towards nodes
	// whose topology entry names a bfdProfile).
	BFD *topology.BFDProfile
}

// Announcer is a test BGP speaker process (`fabric announce`) in a node's namespace:
// it dials every ToR and announces prefixes with the node's address as next-hop. It
// stands in for the real speaker when testing the fabric itself.
type Announcer struct {
	Node string
	proc Proc
	hc   *http.Client
}

// StartAnnouncer starts a test announcer in node's namespace and waits until its API
// answers (its BGP sessions come up on their own; use WaitForRoute).
func (f *Fabric) StartAnnouncer(ctx context.Context, node string, opts AnnouncerOptions) (*Announcer, error) {
	n, ok := f.state.Topology.Node(node)
	if !ok {
		return nil, fmt.Errorf("fabric %s: no node %q", f.state.Instance, node)
	}
	hold := opts.HoldTime
	if hold == 0 {
		hold = f.state.Topology.BGP.HoldTime.Std()
		for _, r := range f.state.Topology.ToRs {
			hold = max(hold, f.state.Topology.Timers(r.Name).HoldTime.Std())
		}
	}
	cfg := announcer.Config{
		Name: node, Address: n.Address, Address6: n.Address6, ASN: n.ASN, Prefixes: opts.Prefixes,
		ControlSocket: filepath.Join(f.dir, "ann-"+node+".sock"),
		HoldTime:      topology.Duration(hold), BFD: opts.BFD,
	}
	for _, r := range f.state.Topology.ToRs {
		cfg.Peers = append(cfg.Peers, announcer.Peer{Address: r.Address, ASN: r.ASN})
	}
	cfgPath := filepath.Join(f.dir, "ann-"+node+".json")
	if err := cfg.Write(cfgPath); err != nil {
		return nil, err
	}
	p, err := f.spawn(f.NetNS(node), filepath.Join(f.dir, "ann-"+node+".log"), "announce", "--config", cfgPath)
	if err != nil {
		return nil, fmt.Errorf("announcer %s: %w", node, err)
	}
	p.Socket, p.Config = cfg.ControlSocket, cfgPath
	if err := f.update(func(s *State) {
		if s.Announcers == nil {
			s.Announcers = map[string]Proc{}
		}
		s.Announcers[node] = p
	}); err != nil {
		return nil, err
	}
	a := &Announcer{Node: node, proc: p, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p.Socket)
		}}}}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if err := a.call(wctx, http.MethodGet, "/healthz", nil); err == nil {
			return a, nil
		}
		if !p.Alive() {
			return nil, fmt.Errorf("announcer %s exited (log: %s)", node, p.Log)
		}
		select {
		case <-wctx.Done():
			a.Stop()
			return nil, fmt.Errorf("announcer %s not ready (log: %s): %w", node, p.Log, wctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (a *Announcer) call(ctx context.Context, method, path string, body any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://announcer"+path, rd)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("announcer %s: %s: %s", a.Node, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Announce adds prefixes.
func (a *Announcer) Announce(ctx context.Context, prefixes ...netip.Prefix) error {
	return a.call(ctx, http.MethodPost, "/announce", announcer.Request{Prefixes: prefixes})
}

// Withdraw removes prefixes.
func (a *Announcer) Withdraw(ctx context.Context, prefixes ...netip.Prefix) error {
	return a.call(ctx, http.MethodPost, "/withdraw", announcer.Request{Prefixes: prefixes})
}

// SetBFDAdmin shuts the announcer's BFD session to a ToR down administratively
// (enable false: the ToR receives AdminDown) or enables it again.
func (a *Announcer) SetBFDAdmin(ctx context.Context, tor netip.Addr, enable bool) error {
	op := "/disable"
	if enable {
		op = "/enable"
	}
	return a.call(ctx, http.MethodPost, "/bfd/"+tor.String()+op, nil)
}

// PID is the announcer's process id.
func (a *Announcer) PID() int { return a.proc.PID }

// Stop ends the announcer process (its sessions close with a NOTIFICATION).
func (a *Announcer) Stop() {
	stopProcs(context.Background(), []Proc{a.proc})
	a.hc.CloseIdleConnections()
}
