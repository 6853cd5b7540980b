package main

// The floor: what a route change costs without ecmplb in the way. Two parts,
// measured in the same run as ecmplb:
//
//   - watch delivery: a client that only watches the probe's EndpointSlice
//     (in this process) sees each write the speaker sees;
//   - the AddPath hop: a bare GoBGP server (a child process in the speaker's
//     namespace, peered directly with router 1) adds and deletes a /32, timed
//     from just before AddPath/DeletePath to router 1's event, the same event
//     ecmplb's latency ends at.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/ecmplb/ecmplb/internal/gobgplog"
)

// bareEnv carries the bare speaker's JSON config to the child process.
const bareEnv = "ECMPLB_BENCH_BARE_SPEAKER"

// fetchEnv makes the child fetch one URL (inside the speaker's namespace, where
// the speaker's loopback endpoints are) and copy it to stdout.
const fetchEnv = "ECMPLB_BENCH_FETCH"

type bareConfig struct {
	Local     string `json:"local"`
	ASN       uint32 `json:"asn"`
	Router    string `json:"router"`
	RouterASN uint32 `json:"routerASN"`
	Prefix    string `json:"prefix"` // an IPv4 /32
}

// maybeRunChild runs the bench binary's child roles and exits; it returns
// when this process is not one.
func maybeRunChild() {
	if u := os.Getenv(fetchEnv); u != "" {
		resp, err := http.Get(u)
		if err == nil {
			_, err = io.Copy(os.Stdout, resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("GET %s: %s", u, resp.Status)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	raw := os.Getenv(bareEnv)
	if raw == "" {
		return
	}
	var cfg bareConfig
	err := json.Unmarshal([]byte(raw), &cfg)
	if err == nil {
		err = runBare(cfg, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare speaker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runBare peers with the router and then, for each line "add" or "del" on in,
// prints the Unix nanoseconds taken just before the AddPath or DeletePath.
func runBare(cfg bareConfig, in io.Reader, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s := server.NewBgpServer(server.LoggerOption(gobgplog.New(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))))
	go s.Serve()
	defer s.Stop()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: cfg.ASN, RouterId: cfg.Local, ListenPort: -1}}); err != nil {
		return err
	}
	up := make(chan struct{})
	closed := false
	if err := s.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		if p := r.GetPeer(); p != nil && p.Peer != nil && p.Peer.State != nil &&
			p.Peer.State.SessionState == api.PeerState_ESTABLISHED && !closed {
			closed = true
			close(up)
		}
	}); err != nil {
		return err
	}
	if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: cfg.Router, PeerAsn: cfg.RouterASN},
		Transport: &api.Transport{LocalAddress: cfg.Local},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 90, KeepaliveInterval: 30}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}}},
	}}); err != nil {
		return err
	}
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		return fmt.Errorf("no session with %s after 60 s", cfg.Router)
	}
	pfx := strings.TrimSuffix(cfg.Prefix, "/32")
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop(cfg.Local)}
	fmt.Fprintln(out, "ready")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		withdraw := sc.Text() == "del"
		p, err := apiutil.NewPath(bgp.NewIPAddrPrefix(32, pfx), withdraw, attrs, time.Now())
		if err != nil {
			return err
		}
		t0 := time.Now().UnixNano()
		if withdraw {
			err = s.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
		} else {
			_, err = s.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(out, t0)
	}
	return sc.Err()
}

// bareSpeaker is the running child.
type bareSpeaker struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startBare(netns string, cfg bareConfig) (*bareSpeaker, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command("ip", "netns", "exec", netns, self)
	cmd.Env = append(os.Environ(), bareEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &bareSpeaker{cmd: cmd, in: in, out: bufio.NewScanner(stdout)}
	if !b.out.Scan() || b.out.Text() != "ready" {
		b.stop()
		return nil, fmt.Errorf("bare speaker did not start: %q %v", b.out.Text(), b.out.Err())
	}
	return b, nil
}

// change adds (or deletes) the prefix and returns the time just before the call.
func (b *bareSpeaker) change(add bool) (time.Time, error) {
	cmd := "del"
	if add {
		cmd = "add"
	}
	if _, err := fmt.Fprintln(b.in, cmd); err != nil {
		return time.Time{}, err
	}
	if !b.out.Scan() {
		return time.Time{}, fmt.Errorf("bare speaker exited: %v", b.out.Err())
	}
	ns, err := strconv.ParseInt(b.out.Text(), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

func (b *bareSpeaker) stop() {
	b.in.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// fetchIn GETs url from inside netns (the speaker's loopback endpoints).
func fetchIn(netns, url string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", netns, self)
	cmd.Env = append(os.Environ(), fetchEnv+"="+url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fetching %s in %s: %v: %s", url, netns, err, stderr.String())
	}
	return out, nil
}
