// Package mode runs layer 2 mode on one node (issue 14): it takes every
// Service announced by ARP/NDP and every Node from the watch (ApplyL2,
// SetL2Nodes), hears the other speakers through package heartbeat, decides
// which node answers for each Service IP, and converges the responder, the
// ServiceL2Status writer and the Events to what this node answers.
//
// # Functional core
//
// Compute (pure) runs leader.Assign over every Service: a Service's
// candidates (L2Service.Nodes: selected by its L2Advertisements, and for
// externalTrafficPolicy Local holding a ready endpoint) that are alive are
// its Nodes, the others its Down, so a node failing moves its own IPs only
// and they move back when it returns. It returns the owner of every Service
// and what this node answers: per interface, the IPs. Every speaker fed the
// same Services and the same alive set computes the same owners, so exactly
// one node answers each IP without any coordination; between two views of
// liveness that differ, two nodes may disagree for as long as the views do,
// which the liveness rules below bound.
//
// Decide (pure) says whether this node may answer at all and which nodes
// are alive. Eligible (pure) picks the interfaces answered on for a Service
// whose L2Advertisement names none (MetalLB then answers on every
// interface): up, not loopback nor point-to-point, broadcast-capable, with an
// Ethernet address, and not one of the node's own virtual plumbing
// interfaces (container veths and bridges, CNI overlays and tunnels,
// kube-ipvs0, node-local DNS: see excludedPrefixes). An interface an
// L2Advertisement names is answered on whatever it is.
//
// # Liveness: heartbeats detect
//
// Heartbeats go out, and the Lease is renewed and watched, only once some
// Service is announced in layer 2 mode: a cluster that uses BGP only sends
// nothing between its nodes and writes no Lease (heartbeats stop again with
// the last such Service; the Leases, once started, run on). When they
// start, silences count from then: a node that heard no one because it
// asked no one is not alone before the others had Threshold to answer.
//
// The decision recorded in package liveness ("The choice"): a direct
// heartbeat between speakers detects, as Leases cannot within the failover
// goal at 100 nodes. Every receipt of another node's heartbeat is a
// liveness.Table.Heard, stamped on receipt. With the heartbeat every
// Interval (default 100 ms here), DefaultLiveness sets:
//
//   - Threshold 6 x Interval (600 ms): a node silent that long is down and
//     its IPs move. Detection takes 0.5-0.6 s after its last heartbeat.
//     Three intervals (300 ms) would detect sooner but leave this node's own
//     fence (below) a single lost datagram from closing.
//   - Rejoin 10 x Interval (1 s): a node back (or new) takes its IPs back
//     only after 1 s of heartbeats without a gap: a flapping node stays
//     down instead of pulling its IPs back and forth.
//   - Margin 1 x Interval (100 ms): covers the delivery of a heartbeat (µs
//     on a segment), this loop's latency from the deadline to the responder
//     dropping the IPs, and the clocks' rates.
//   - MaxTickGap 2 x Interval: a longer gap between ticks is a pause of this
//     process, which must not make everyone else look dead.
//
// # This node's own standing: echoes fence
//
// A node must not answer for IPs the others may have handed to another node.
// The others hand this node's IPs away Threshold after their last receipt of
// its heartbeat. Every heartbeat echoes the last round its sender received
// from its destination (heartbeat.Config.Echoed gives the send time of the
// echoed round): proof that a peer received the heartbeat sent then, which is
// a liveness.Table.Confirmed. So this node answers only until Threshold -
// Margin after the send of its latest heartbeat any peer echoed, and after a
// silence only once the peers have taken it back (the Table's rules). A node
// cut off from the segment stops answering before anyone takes its IPs, and
// on its return waits until the others list it alive again, instead of
// answering (and announcing) IPs the others now hold.
//
// Nothing is answered before Threshold + Rejoin after the start: by then
// every live peer has been heard for Rejoin and is alive, so a restarted
// speaker does not take IPs from nodes it has not heard yet.
//
// Alone: a node that hears no other node's heartbeat for longer than
// Threshold, with its socket open (heartbeat.Receiving), answers without
// echoes: there is no one to take its IPs, or every other speaker is gone (a
// single node cluster; the survivor of two). It stops at the first receipt
// from anyone, and then waits for echoes like a node back from a silence.
// With its socket failing it hears no one and answers nothing. With Leases
// (below), hearing no one is not enough: in a cluster of more than one Node
// it answers alone only while its own renewals work and no other node's
// Lease is alive, so a blocked heartbeat port or a cut heartbeat path makes
// no node answer for everything; the survivor of a two-node cluster then
// takes over once the other's Lease has been silent for the Lease Threshold
// (10 s), where three or more nodes hear each other and take over in 0.6 s.
//
// # Leases fence against apiserver partitions
//
// With Options.Lease, package lease runs a second liveness.Table over
// coordination.k8s.io/v1 Leases (ecmplb-speaker-<node>, renewed every
// DefaultLeasePeriod, 2 s; DefaultLeaseLiveness: Threshold 10 s, Margin 1 s,
// no Rejoin), and every heartbeat carries whether its sender's renewals are
// confirmed (heartbeat.Config.PeerState). Decide adds two rules:
//
//   - This node does not answer while its Lease fence is closed (no renewal
//     accepted for Threshold - Margin) and another node heard within the
//     heartbeat Threshold says its own renewals work: this node is cut off
//     from the apiserver, the others are not, and they will list it down
//     Threshold after its last renewal, which it stops answering Margin
//     before (TestCutOffApiserverFences: fenced 0.70 s into the cut, taken
//     over 0.91 s in, with a 1 s Lease Threshold; no IP answered by both).
//   - A node alive by heartbeat whose Lease has been silent for Threshold is
//     down, but only while this node's own renewals work: when they fail
//     too, the apiserver is the one silent.
//
// So an apiserver outage for everyone (an upgrade, a restart) changes
// nothing: no one's renewals work, no one fences, no one is listed down, and
// the assignment stays as it was. At the start of such an outage, the nodes
// whose deadlines come first may stop answering until the others' deadlines
// pass too (up to one Lease period), then answer again. Leases cost 50
// writes/s at 100 nodes and 2 s (package liveness: 0.44 apiserver cores).
//
// Known limits: a partition inside the segment (A and C cannot hear each
// other, both hear B) lets A and C each take the other's IPs. Without Leases
// (--l2-lease-period=0), a node cut off from the other speakers but not from
// the clients answers alone for everything, a blocked heartbeat port makes
// every node do so, and a node answering alone when its link returns may
// announce IPs the others hold in the moment before it hears them.
//
// # Imperative shell
//
// Runtime owns the state in one goroutine: the watch's calls, heartbeat
// receipts and echoes queue inputs and wake it; it wakes itself when the
// view or the decision changes by itself (liveness.View.Next, Decision.Next)
// and every Resync to list the interfaces again. It recomputes the whole
// assignment when the Services, the Nodes, the alive set or the interfaces
// change (leader.Assign is cheap: 8-16 ms for 10,000 Services), never on a
// heartbeat that changes nothing. It tells the responder the IPs of each
// interface that changed (the responder retries by itself what fails), reads
// back what it answers, and tells the status sink per Service the interfaces
// where every IP of the Service is answered, again every 250 ms until that
// matches what is wanted. Events: "nodeAssigned" (MetalLB's reason and
// message) when this node starts answering for a Service, "nodeUnassigned"
// when it stops, saying why. On stop it stops answering, without announcing
// anything: the next owner announces. The responder asks Runtime.Gate before
// every answer and announcement: closed at this node's fence deadline
// (liveness.View.AnswerUntil) and MaxTickGap after the loop last ran, so a
// late loop or a process thawed from a freeze answers nothing until it has
// decided again.
package mode
