// Package bfd implements Bidirectional Forwarding Detection for single-hop IP
// (RFC 5880, RFC 5881).
//
// The package is split into a pure functional core and a thin imperative shell:
//
//   - packet.go: the control packet codec with every packet-level receive check
//     of RFC 5880 section 6.8.6.
//   - fsm.go: the session state machine as a pure function, and the timer
//     arithmetic of sections 6.8.2-6.8.4 and 6.8.7.
//   - core.go: one session's RFC 5880 state variables and Poll/Final handling,
//     advanced by plain method calls that take the current time and return the
//     packets to send. No goroutines, sockets or clocks.
//   - manager.go and transport.go: the shell. One receive goroutine per local
//     address demultiplexes packets by Your Discriminator (or by peer address
//     when it is zero); each session has one timer from the injected Clock.
//
// Authentication and Demand mode initiation are not implemented (a received
// packet with the A bit set is discarded, as RFC 5880 requires when no
// authentication is configured).
//
// The echo function (Profile.EchoMode, IPv4 only) sends echo packets to our own
// address through the peer's link-layer address (an AF_PACKET socket, MAC from
// the kernel's neighbour table) to UDP 3785; the peer's forwarding plane
// returns them. It runs only while the session is Up and the peer advertises a
// non-zero Required Min Echo RX; echo packets go out every max(EchoInterval,
// peer's Required Min Echo RX) less jitter, and when none has come back for
// our Detect Mult times that interval the session goes Down with "Echo
// Function Failed". With EchoMode we advertise EchoInterval as our Required
// Min Echo RX. Hosts need net.ipv4.ip_forward=1 (to return the peer's echo)
// and accept_local=1 with rp_filter off on the interface (to accept our own
// address as source when our echo comes back).
package bfd
