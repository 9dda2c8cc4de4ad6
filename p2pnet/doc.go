// Package p2pnet is varpar's peer-to-peer transport: one libp2p host per
// peer and the stream protocols that peers speak to each other.
//
//   - InferProtocol (/varpar/infer/1.0.0): one InferRequest (an image, a
//     variant, k, a deadline) for one InferAnswer (the variant's top-k
//     classes and probabilities).
//   - SessionProtocol (/varpar/infer-session/1.0.0): the same calls, many
//     on one long-lived stream per pair of peers, numbered, cancellable one
//     by one. Infer uses it, and falls back to InferProtocol for a peer
//     that does not speak it.
//   - WeightsProtocol (/varpar/weights/1.0.0): one WeightsRequest (a SHA-256)
//     for the weights file in chunks, which the fetcher hashes before it
//     reports success.
//
// The host is private to the cluster: its libp2p private-network key is
// derived from the cluster key (DerivePSK), so a machine without the key
// cannot complete a connection, let alone open a stream. Inside, connections
// use Noise and yamux over TCP only; nothing is relayed, mapped through NAT or
// announced by mDNS (gossip finds the peers).
//
// The protocols follow libp2p's ping: a versioned protocol ID, a deadline on
// every stream step, length-delimited protobuf messages (package pb) read under a
// hard size cap and validated before use, Reset on any error and Close on
// success, and a cancelled context resets the stream. A handler that panics
// answers INTERNAL instead of taking the process down.
//
// Addresses are this package's business, so that its users need neither
// multiaddrs nor libp2p's types: ListenAddr turns a "host:port" (IPv4 or
// IPv6, "[::1]:0") into a listen multiaddr, and NewRemote names another peer
// from what gossip tells about it (its PeerID's text form, an IPv4 or IPv6
// address and a port), with an error wrapping ErrBadAddress that says which
// part is unusable.
//
// Use:
//
//	cfg := p2pnet.DefaultConfig()
//	listen, err := p2pnet.ListenAddr("0.0.0.0:7950")
//	cfg.ListenAddrs = []string{listen}
//	cfg.KeyFile, cfg.ClusterKey = "/var/lib/varpar/peer.key", clusterKey
//	h, err := p2pnet.New(cfg)
//	...
//	defer h.Close()
//	h.SetInferHandler(serve)        // func(ctx, from PeerID, *pb.InferRequest) *pb.InferAnswer
//	h.SetWeightsSource(store.Open)  // func(sha256hex) (io.ReadCloser, int64, bool)
//	other, err := p2pnet.NewRemote(peerID, "fd00::7", 7950)
//	ans, err := h.Infer(ctx, other, &pb.InferRequest{...})
//	err = h.FetchWeights(ctx, other, sha, maxSize, tmpFile)
//
// p2pnet carries bytes and metadata; it knows nothing of neural networks.
package p2pnet
