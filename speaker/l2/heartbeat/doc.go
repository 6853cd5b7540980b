// Package heartbeat is the layer 2 mode's failure detector transport (issue
// 14): every speaker sends one small UDP datagram to every other speaker's
// InternalIP each Interval (200 ms by default, port 7947), and reports each
// valid datagram it receives, stamped on receipt with its own clock, to the
// caller, which feeds liveness.Table.Heard. Deciding who is dead is the
// Table's job (package liveness, whose doc records why a direct heartbeat
// detects and slow Leases fence); this package only moves datagrams.
//
// # Wire format (version 1)
//
// Big-endian, one datagram per peer per round:
//
//	offset size
//	0      4    magic "ELHB"
//	4      1    version (1)
//	5      1    flags: bit 0 = an HMAC follows the name; other bits must be 0
//	6      1    n, length of the node name (1-253)
//	7      1    state: bit 0 = the sender's own Lease renewals are
//	            confirmed (Heartbeat.SetRenewing); other bits sent as 0 and
//	            ignored (version 1 receivers before it ignored the byte)
//	8      8    incarnation: random per Run, so a restarted sender's sequence
//	            starting again is not taken for replays
//	16     8    sequence: the sender's round, from 1; the same in every
//	            datagram of a round
//	24     8    echo: the last sequence the sender accepted from this
//	            datagram's destination (0: none yet)
//	32     4    echo hold: microseconds from that receipt to this send
//	36     n    sender's node name (UTF-8)
//	36+n   32   HMAC-SHA256 over bytes 0..36+n, when the flag is set
//
// A receiver drops, and counts by reason, anything longer than the largest
// valid datagram (321 bytes, never read further), with the wrong magic or
// version, with a bad name length or encoding or trailing bytes, without a
// valid HMAC when it has a key, carrying its own name, or with a sequence it
// already accepted from that incarnation (a duplicate, one overtaken, or a
// recording replayed while the sender still runs). A receiver without a key
// ignores a MAC, so a key can be rolled out node by node (enforcing from the
// first keyed receiver on). The receiver stamps each accepted datagram with
// its own clock on receipt; no sender clock is ever read, so the nodes'
// clock offsets do not matter. The echo turns into a round trip time on the
// sender's side (now - send time of the echoed round - hold;
// ecmplb_speaker_l2_heartbeat_rtt_seconds), and into proof that the peer
// received the round sent then (Config.Echoed), which the layer 2 runtime
// takes as a confirmation of its own liveness. The state bit tells the
// peers whether the sender's Lease renewals work (Config.PeerState): the
// runtime fences on a failing Lease only while some peer's work.
//
// The key authenticates membership, not freshness: someone on the segment
// who recorded a node's datagrams can replay them after that node stopped,
// with a new incarnation each time, and keep it heard (and, by echoing the
// victim's rounds seen on the wire, keep its fence open). Closing that needs
// challenge and response (accepting only datagrams echoing a recent round
// of the receiver's), which would also make a one-way link failure look
// like a failure of both nodes; left for when the threat model asks for it.
//
// # Cost at 100 nodes
//
// Each node sends 99 datagrams per round, so at 200 ms it sends and receives
// 495 datagrams/s each (990 at 100 ms). A datagram with a 20-byte node name
// is 56 bytes of UDP payload, 88 with a key; 116 bytes as an IPv4 packet
// with a key (136 over IPv6), 134 as an Ethernet frame. At 200 ms that is
// about 57 KB/s (0.46 Mbit/s) out of and into each node, 5.7 MB/s and
// 49,500 frames/s over the whole switch; twice that at 100 ms. Against a
// node's link that is noise; the CPU is one sendto per datagram and one
// recvfrom per datagram received (about 1,000 syscalls/s at 200 ms), with a
// SHA-256 over 56 bytes each way when keyed. The apiserver carries nothing.
// The total grows with N^2 (at 1,000 nodes: 5,000 datagrams/s into each
// node at 200 ms, 5 million frames/s across the fabric); beyond a few
// hundred nodes a node should send to a subset (its L2Advertisement's
// candidates for its IPs) rather than to all.
//
// # Why unicast
//
// One multicast datagram per round would cut the sends from N-1 to 1, but
// not the receives, which are the same N-1 either way. And multicast is the
// part real networks break: switches with IGMP/MLD snooping and no querier
// on the segment stop forwarding a group once their membership timer runs
// out (minutes after start, so a test passes and production fails); many
// virtual and cloud networks drop multicast outright; link-local groups are
// flooded or punted to the switch's CPU and rate-limited there. Unicast to
// the InternalIPs takes the same path as every other packet between the
// nodes, needs no group membership, and gives each pair its own echo.
// Nodes need UDP 7947 open between them, like MetalLB's memberlist port.
//
// # Sockets
//
// One socket receives: dual-stack (IPv6 with IPv4-mapped addresses) on the
// port, unless Listen binds it to one address. Each peer address has its
// own unconnected sending socket on an ephemeral port (a node at 100 peers
// holds 100 UDP sockets), because the datagrams the kernel holds for an
// absent peer while it resolves its MAC (up to 3 s of them) are charged to
// the sending socket's buffer: with one socket for all, a few dozen dead
// nodes (a rack losing power) fill it and the live nodes' heartbeats stop
// too, which makes them look dead as well. A send never waits: a datagram
// that finds its socket's buffer full is dropped and counted, and a socket
// that failed a send is replaced at the next round. The send loop runs only
// while the receiving socket is open, so a node that cannot hear looks
// silent to the others as well (Receiving reports it). A failure to open or
// read the receiving socket is retried with backoff (100 ms doubling to
// 5 s) for as long as Run runs; the sequence carries on across reopenings.
package heartbeat
