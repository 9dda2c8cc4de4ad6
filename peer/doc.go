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
package peer
