// Package peer is the varpar daemon: it wires the gossip membership, the
// libp2p transport, the decision logic of package consensus and the inference
// engine of package nn into one device of the cluster. A Peer serves the
// variants that the shared plan (consensus.Assign over the gossip view) gives
// it, fetches weights it lacks from other peers, and answers classification
// requests by fanning them out to one replica of every live variant (hedging
// to a second), fusing the answers as they arrive and stopping as soon as the
// decision cannot change, never after the request's deadline.
//
// Lifecycle: New checks the configuration and starts nothing; Start starts;
// Leave tells the cluster this peer is going; Shutdown stops everything and
// waits for every goroutine, and may be called twice.
//
// One file per concern:
//
//   - peer.go: the lifecycle and the reconcile loop (plan, load, hand over).
//   - members.go: the membership interface the peer needs of package gossip,
//     the view of members built from it, and this peer's metadata.
//   - transport.go: the transport interface the peer needs of package
//     p2pnet. Addresses, IPv4 and IPv6, are p2pnet's business (ListenAddr,
//     NewRemote): this package names a member's host by the peer ID, IP and
//     port gossip tells, and never sees a multiaddr.
//   - scheduler.go: a request's fan-out (replica choice, hedging,
//     cancellation, the decision loop), driven by a call function, so that
//     it is tested without sockets.
//   - classify.go: Classify, and the call function: a variant this peer
//     serves goes straight to its server, another peer's answer is checked
//     before it counts.
//   - decode.go: a client's image is decoded once, by the peer it was sent
//     to, within budgets (slots, decoded bytes in flight) and the deadline,
//     and resized to each variant's resolution: peers send each other only
//     that (pb.ResizedImage), never the file.
//   - serve.go: one served variant's queue; store.go: the model store, which
//     hands out the bytes it has checked so that nothing hashes them twice.
//
// peer is the only package that knows gossip, p2pnet, consensus and nn
// together; gossip and p2pnet carry bytes and know nothing of the others.
package peer
