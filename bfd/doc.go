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
// authentication is configured). Echo mode is accepted and validated in a
// Profile but not yet implemented: sessions always advertise a Required Min
// Echo RX Interval of zero, so peers never send echo packets to us.
package bfd
