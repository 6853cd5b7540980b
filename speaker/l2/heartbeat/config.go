package heartbeat

import (
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"
)

const (
	// DefaultPort is the heartbeat's UDP port: next to MetalLB's memberlist
	// (7946), and clear of the speaker's metrics (7472), the controller's
	// health port (7473) and BFD (3784, 3785, 4784).
	DefaultPort = 7947
	// DefaultInterval is the send period: with a liveness threshold of 3
	// periods, a silent node is dead after 0.4-0.6 s.
	DefaultInterval = 200 * time.Millisecond
	// MinInterval bounds the send rate (at 100 nodes, 10 ms would be 10,000
	// datagrams/s into each node).
	MinInterval = 10 * time.Millisecond
)

// Config is one speaker's heartbeat set-up. Port, Interval and Key must be
// the same on every speaker of a cluster.
type Config struct {
	// Node is this node's name, sent in every datagram (required, at most
	// 253 bytes).
	Node string
	// Port is the UDP port to listen on and send to (0: DefaultPort).
	Port int
	// Interval is the send period (0: DefaultInterval).
	Interval time.Duration
	// Key, when set, is a shared secret: every datagram carries an
	// HMAC-SHA256 over its content made with it, and datagrams without a
	// valid one are dropped and counted (reason "auth").
	Key []byte
	// Listen is the address to bind (zero: every address, IPv4 and IPv6 on
	// one socket). Bound to one address, the heartbeat sends only to peers
	// of that address's family.
	Listen netip.Addr
	// Echoed, when set, is called for every datagram accepted from another
	// node whose echo names a recent round of this node's, with that node's
	// name and the time the echoed round was sent (this node's clock): proof
	// that the node received this node's heartbeat sent then. It is called
	// from the receiving goroutine, after heard's caller has been told of
	// the datagram, and must return quickly. The layer 2 mode confirms its
	// own liveness with it (liveness.Table.Confirmed).
	Echoed func(node string, sent time.Time)
	// PeerState, when set, is called for every datagram accepted from
	// another node, after Echoed, with the sender's state bit: whether its
	// own Lease renewals are confirmed (its SetRenewing), stamped at receipt.
	PeerState func(node string, renewing bool, at time.Time)
	// Enter, when set, runs f where the sockets are to be created (tests: in
	// a network namespace); nil: in the calling goroutine's.
	Enter func(f func() error) error
}

// withDefaults returns c with the zero fields defaulted, or an error naming
// the field that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	switch {
	case c.Node == "":
		return c, fmt.Errorf("heartbeat: node name is required")
	case len(c.Node) > maxNodeLen:
		return c, fmt.Errorf("heartbeat: node name %q is %d bytes, more than %d", c.Node, len(c.Node), maxNodeLen)
	case !utf8.ValidString(c.Node):
		return c, fmt.Errorf("heartbeat: node name %q is not valid UTF-8", c.Node)
	case c.Port < 1 || c.Port > 65535:
		return c, fmt.Errorf("heartbeat: port %d is not a UDP port", c.Port)
	case c.Interval < MinInterval:
		return c, fmt.Errorf("heartbeat: interval %v is below the minimum %v", c.Interval, MinInterval)
	case c.Listen.IsValid() && c.Listen.Is4In6():
		c.Listen = c.Listen.Unmap()
	}
	c.Key = append([]byte(nil), c.Key...) // the caller may reuse its slice
	return c, nil
}
