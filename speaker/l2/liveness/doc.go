// Package liveness decides, for the layer 2 mode (issue 14), which speakers
// are alive and whether this one may answer ARP/NDP at all. It is pure:
// time-stamped observations in, a View out, every time passed in by the
// caller. It does not care how renewals travel: package lease feeds it from
// coordination.k8s.io/v1 Leases; a direct heartbeat between speakers would
// feed it the same way (Heard on receipt, Confirmed on proof that the others
// got ours).
//
// # The rules
//
//   - Observations use the observer's clock, on receipt, never a timestamp
//     written by the sender: the nodes' clock offsets do not matter, only
//     their rates (over Threshold).
//   - A node is dead once not heard for longer than Threshold. One that was
//     dead, or is new, is alive again at its first renewal received at
//     least Rejoin after the first of its current run (a run: renewals with
//     no gap above Threshold between them). A node renewing intermittently
//     (flapping) therefore stays down instead of pulling its IPs back and
//     forth.
//   - The nodes present when this node starts watching (Known) count as
//     alive until Threshold passes without a renewal: guessing them dead
//     could make two nodes answer for their IPs.
//   - Fencing: this node answers only until Threshold - Margin after the
//     send time of its last renewal the apiserver accepted; no observer can
//     consider it dead earlier than Threshold after that send. After a
//     silence it answers again Margin after the first accepted send that is
//     Rejoin + Margin into its new run, by which time every observer has
//     taken it back (see Table.Advance). A speaker restarted faster than
//     Threshold is never down for the others, and leaves its IPs unanswered
//     for up to Rejoin + Margin + one period: a gap, never two answering.
//     Margin must cover the delivery of a
//     renewal to the slowest observer: TestFenceNeverSplits shows no moment
//     of two answering with deliveries up to Margin, over lost writes, lost
//     answers and outages, and finds such moments with deliveries up to 3x
//     Margin, or with the Margin left out of the rule that starts a new run
//     (7 of 40 schedules) or of the wait before answering again (30 of 40).
//     In the deadline itself the Margin covers what the model leaves out: a
//     reply decided just before it and sent after, and the clocks' rates.
//   - This process pausing (a gap above MaxTickGap between Advance calls, or
//     before a receipt) or its clock stepping back does not count as
//     listening time: ages stay as they were before the gap, so a speaker
//     that was frozen does not find everyone dead and take their IPs. A step
//     back also voids its own confirmations (their times are in the future).
//
// # Why not Leases alone: what leasebench measured
//
// `go run ./speaker/l2/leasebench` (100 speakers, each renewing its own
// Lease every R and each watching all of them through an informer, each with
// its own connection; real etcd 3.6.4 and kube-apiserver 1.34.4 on the
// 2-core machine, 40 s per R, under the heavy-jobs lock, 2026-12-01 17:07):
//
//	R                                     250 ms          500 ms          1 s             2 s
//	Lease writes/s (wanted: N/R)          301 (400)       190 (200)       95 (100)        48 (50)
//	write round trip p50 / p99, ms        259 / 717       24.6 / 138      14.3 / 66       11.5 / 74
//	kube-apiserver / etcd CPU, cores      1.05 / 0.12     0.94 / 0.15     0.73 / 0.12     0.44 / 0.08
//	bench (100 renewers, 100 informers)   0.75 cores      0.70 cores      0.54 cores      0.32 cores
//	whole machine busy (of 2 cores)       1.98            1.85            1.42            0.94
//	watch events delivered/s              29,462          19,029          9,541           4,771
//	watches closed early, watched again   738             0               0               0
//	send -> delivery p50/p99/max, ms      1068/2093/2786  35/232/420      15/79/168       11/91/281
//	largest gap of a live node's receipts 1.75 s          0.87 s          1.15 s          2.28 s
//	gaps above KxR (false deaths), K=2/3  208,556/40,103  0/0             0/0             0/0
//	detection from the stop, max, K=2     2.52 s          1.19 s          1.99 s          3.89 s
//	detection from the stop, max, K=3     2.77 s          1.69 s          2.99 s          5.89 s
//
// (103, 67, 37 and 19 stops at random phases, each seen by every watcher; a
// false death is one watcher's gap above KxR between two receipts of a live
// node.) An earlier run (16:59, same code, without the 2 s column) was worse
// at 250 and 500 ms: 187 and 184 writes/s, delivery p99 3.4 s and 1.7 s,
// 885 false deaths at 500 ms with K = 3, detection at 500 ms and K = 2 up to
// 3.17 s. With 10 watchers instead of 100, R = 250 ms is easy: 379 writes/s
// for 0.97 apiserver cores, delivery p99 173 ms, no false death, detection
// at most 0.90 s with K = 3. The writes are affordable; sending each to
// every speaker is not.
//
// Detection from a stop lies between (K-1)R and KR plus the delivery, so
// 1.2 s needs R <= 0.55 s with K = 2 or R <= 0.4 s with K = 3: 250-400 Lease
// writes/s at 100 nodes, 25-40 times what kubelet's node Leases cost the
// same cluster (10/s), and every write goes to every speaker: N^2/R watch
// events, 25,000-40,000/s at 100 nodes, 2.5-4 million/s at 1,000. Only R =
// 500 ms with K = 2 met 1.2 s here, by 6 ms, in one run of two, with no
// slack for a single late renewal (threshold 1 s, a live node's largest gap
// 0.87 s) and more than half this machine busy with it; at R = 1 s detection
// takes up to 2 s. (On this machine the bench's informers share the cores
// with the apiserver; in a cluster they run on the nodes, but the fan-out
// grows with N^2 all the same.)
//
// And fencing on Lease renewals stops every speaker from answering
// Threshold - Margin into any apiserver outage (TestCutOffSpeakerFences:
// 0.42-0.57 s), which an apiserver restart or upgrade causes as a matter of
// course.
//
// # The choice
//
// Detection by a direct heartbeat between speakers on the L2 segment (the
// nodes that can take over an IP are on it anyway): one datagram of about
// 100 bytes every 100-200 ms, to a link-local multicast group; at 100 nodes
// each node sends 5-10 and receives 500-1,000 packets/s (50-100 KB/s), and
// the apiserver nothing. With K = 3 at 200 ms, detection is 0.4-0.6 s plus
// microseconds of delivery. Fencing by Leases at a slow rate (for example 2
// s, Threshold 10 s: 50 writes/s and 4,800 events/s at 100 nodes, measured
// above at 0.44 apiserver cores with delivery p99 91 ms): a speaker
// whose Lease is silent is down for the others, and stops answering by the
// rule above, so a speaker cut off from the apiserver cannot keep an IP the
// others reassigned; one refinement left open is to fence on Lease failure
// only while some peer's heartbeat reports its own renewals working, so an
// outage of the apiserver for everyone (when no one can see a change and the
// assignment is frozen alike everywhere) does not silence the whole cluster.
// Both paths run this package's Table.
package liveness
