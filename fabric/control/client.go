package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/ecmplb/ecmplb/fabric/rib"
)

// ErrNotFound is returned when the router has no route for the asked prefix.
var ErrNotFound = errors.New("not found")

// Client talks to one router's control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the router listening on the Unix socket path.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: 4,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket is the path the client dials.
func (c *Client) Socket() string { return c.socket }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://router"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("router %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("router %s: %s %s: %s: %s", c.socket, method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("router %s: decode %s: %w", c.socket, path, err)
	}
	return nil
}

// Healthy returns nil when the router answers and BGP runs.
func (c *Client) Healthy(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// RIB returns every ECMP set.
func (c *Client) RIB(ctx context.Context) ([]rib.ECMPSet, error) {
	var out []rib.ECMPSet
	return out, c.do(ctx, http.MethodGet, "/rib", nil, &out)
}

// Route returns the ECMP set of exactly this prefix; ErrNotFound if there is none.
func (c *Client) Route(ctx context.Context, prefix netip.Prefix) (rib.ECMPSet, error) {
	var out rib.ECMPSet
	return out, c.do(ctx, http.MethodGet, "/rib?prefix="+url.QueryEscape(prefix.String()), nil, &out)
}

// Lookup returns the longest-match ECMP set for an address; ErrNotFound if none.
func (c *Client) Lookup(ctx context.Context, addr netip.Addr) (rib.ECMPSet, error) {
	var out rib.ECMPSet
	return out, c.do(ctx, http.MethodGet, "/rib?prefix="+url.QueryEscape(addr.String()), nil, &out)
}

// Summary returns prefix counts by ECMP width.
func (c *Client) Summary(ctx context.Context) (rib.Summary, error) {
	var out rib.Summary
	return out, c.do(ctx, http.MethodGet, "/summary", nil, &out)
}

// History returns RIB changes with Seq > after.
func (c *Client) History(ctx context.Context, after uint64) ([]rib.Change, error) {
	var out []rib.Change
	return out, c.do(ctx, http.MethodGet, "/history?after="+strconv.FormatUint(after, 10), nil, &out)
}

// WaitHistory returns RIB changes with Seq > after; when there is none yet, the
// router holds the request until one is recorded or wait has passed (then the
// result is empty). At most a minute.
func (c *Client) WaitHistory(ctx context.Context, after uint64, wait time.Duration) ([]rib.Change, error) {
	var out []rib.Change
	return out, c.do(ctx, http.MethodGet, "/history?after="+strconv.FormatUint(after, 10)+"&wait="+url.QueryEscape(wait.String()), nil, &out)
}

// Neighbors returns the BGP neighbors.
func (c *Client) Neighbors(ctx context.Context) ([]Neighbor, error) {
	var out []Neighbor
	return out, c.do(ctx, http.MethodGet, "/neighbors", nil, &out)
}

// BFD returns the BFD sessions.
func (c *Client) BFD(ctx context.Context) ([]BFDSession, error) {
	var out []BFDSession
	return out, c.do(ctx, http.MethodGet, "/bfd", nil, &out)
}

// Events returns neighbor events with Seq > after.
func (c *Client) Events(ctx context.Context, after uint64) ([]Event, error) {
	var out []Event
	return out, c.do(ctx, http.MethodGet, "/events?after="+strconv.FormatUint(after, 10), nil, &out)
}

// FIB returns the routes the router programmed into its kernel FIB.
func (c *Client) FIB(ctx context.Context) ([]FIBRoute, error) {
	var out []FIBRoute
	return out, c.do(ctx, http.MethodGet, "/fib", nil, &out)
}

// AddNeighbor configures a new neighbor on the running router.
func (c *Client) AddNeighbor(ctx context.Context, n NeighborConfig) error {
	return c.do(ctx, http.MethodPost, "/neighbors", n, nil)
}

// DeleteNeighbor removes a neighbor from the running router.
func (c *Client) DeleteNeighbor(ctx context.Context, addr netip.Addr) error {
	return c.do(ctx, http.MethodDelete, "/neighbors/"+addr.String(), nil, nil)
}

// DisableNeighbor shuts the session down administratively (NOTIFICATION Cease).
func (c *Client) DisableNeighbor(ctx context.Context, addr netip.Addr, communication string) error {
	return c.do(ctx, http.MethodPost, "/neighbors/"+addr.String()+"/disable", DisableRequest{Communication: communication}, nil)
}

// EnableNeighbor undoes DisableNeighbor.
func (c *Client) EnableNeighbor(ctx context.Context, addr netip.Addr) error {
	return c.do(ctx, http.MethodPost, "/neighbors/"+addr.String()+"/enable", nil, nil)
}

// SetBFDAdmin shuts the BFD session to a neighbor down administratively
// (enable false: the neighbor receives AdminDown) or enables it again.
func (c *Client) SetBFDAdmin(ctx context.Context, addr netip.Addr, enable bool) error {
	op := "/disable"
	if enable {
		op = "/enable"
	}
	return c.do(ctx, http.MethodPost, "/bfd/"+addr.String()+op, nil, nil)
}

// MuteBFD stops (true) or resumes sending BFD packets to a neighbor.
func (c *Client) MuteBFD(ctx context.Context, addr netip.Addr, muted bool) error {
	op := "/unmute"
	if muted {
		op = "/mute"
	}
	return c.do(ctx, http.MethodPost, "/bfd/"+addr.String()+op, nil, nil)
}
