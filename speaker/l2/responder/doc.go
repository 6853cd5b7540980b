// Package responder is the data plane of layer 2 mode: on the node that
// speaker/l2/leader picks for a Service IP, it answers ARP requests (IPv4) and
// Neighbor Solicitations (IPv6) for that IP with the interface's hardware
// address, and announces the IP when it starts answering for it, so that
// clients and routers on the segment send its traffic to this node.
//
// # Control
//
// The caller states, per interface, the IPs wanted (Set, or Add and Remove);
// the Responder converges its listeners to that set, level-triggered: a
// missing or down interface, a tentative link-local address or a refused
// socket is retried with exponential backoff (Options.MinBackoff to
// MaxBackoff) until it works, and an IP counts as answered (Answering) only
// once its family's listener is open and, for IPv6, its solicited-node
// multicast group joined; Pending lists what is still being retried. A
// converged interface is checked again every Options.Resync (still there,
// same index and hardware address, up with carrier); a listener whose read
// fails (the interface went down or was deleted) is reopened with backoff.
//
// An IP removed is not answered once Remove (or Set) returns: the readers
// decide and send under a read lock that the change takes for writing.
//
// # Takeover
//
// When an IP starts being answered on an interface (added, or the interface
// came back), the Responder announces it at once and Options.Announcements-1
// more times, Options.AnnounceInterval apart (default 3 rounds, 1 s apart):
// for IPv4 a gratuitous ARP request (sender IP = target IP) and a gratuitous
// ARP reply (target hardware address = sender's), both broadcast; for IPv6
// an unsolicited Neighbor Advertisement with the Override flag to ff02::1.
// A neighbour that holds an entry for the IP replaces the old node's address
// with this one at once, without asking (Linux: arp_is_garp, and
// ndisc_recv_na with Override). Removing the IP cancels its pending rounds,
// so a node that lost an IP never announces it after its successor did.
//
// # Capability
//
// The Responder needs CAP_NET_RAW in the network namespace of the node, and
// no other capability, for its sockets on each interface:
//   - an AF_PACKET socket for EtherType 0x0806 (ARP): the kernel answers ARP
//     only for its own addresses, and a Service IP is not one, so the
//     requests are read and the replies and gratuitous packets, Ethernet
//     frames built here, written on a packet socket;
//   - an AF_PACKET socket for EtherType 0x86dd (IPv6) with a kernel (BPF)
//     filter that passes only ICMPv6 Neighbor Solicitations received for
//     this host: it reads the solicitations, the multicast ones and the
//     unicast ones a client sends to the Service IP itself to re-validate
//     its entry (RFC 4861 7.3.3), which the kernel hands to no ICMPv6 socket
//     since the IP is not local (a raw ICMPv6 socket alone, as MetalLB uses,
//     leaves those unanswered: the client's entry FAILS every time it is
//     re-validated; TestNamespaceUnicastProbe);
//   - a raw ICMPv6 socket (SOCK_RAW, IPPROTO_ICMPV6) bound to the
//     interface's link-local address, which reads nothing: it sends the
//     advertisements with hop limit 255 as RFC 4861 requires, from that
//     address, and holds the solicited-node groups of the IPs (so that the
//     interface accepts their multicast solicitations).
//
// Joining multicast groups on the socket needs no capability. Nothing is
// configured on the interface: no address, no sysctl, no promiscuous mode.
//
// # Libraries
//
// github.com/mdlayher/packet opens the packet socket, github.com/mdlayher/arp
// and github.com/mdlayher/ethernet encode and decode the ARP packets and
// frames; arp.Client is not used because it refuses an interface without an
// IPv4 address of its own. golang.org/x/net/icmp and ipv6 open the ICMPv6
// socket, golang.org/x/net/bpf assembles the filter, and
// github.com/mdlayher/ndp encodes and decodes the NDP messages;
// ndp.Conn is not used because it names the interface by name on every
// write, which the net package maps to an index through a process-wide
// cache (stale for up to a minute after an interface is recreated, wrong
// for a socket of another namespace); see openNDP.
//
// # Known limits
//
//   - An advertisement in answer to a solicitation goes to the solicitor's
//     IP through the kernel, so the node needs a route to it on that
//     interface (an address in its subnet), as for any IPv6 traffic.
//   - A converged interface that goes down is noticed at the next resync
//     (or when a read fails); the caller may call Set again on a link event
//     to make it sooner.
package responder
