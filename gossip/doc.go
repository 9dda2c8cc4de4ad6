// Package gossip is varpar's membership layer: which peers are up, and what
// each says about itself, with no coordinator. It wraps hashicorp/memberlist
// (SWIM failure detection, gossip, periodic full-state exchange) with what a
// home lab needs:
//
//   - Encryption: every packet and stream is sealed with the cluster key
//     (AES-GCM); a node with another key is refused at join and never seen
//     (ErrKeyMismatch).
//   - Metadata: each node carries an opaque blob of at most MetaMaxSize bytes
//     (the peer puts a protobuf in it), read from Config.Meta at Start and
//     re-gossiped by UpdateMeta.
//   - Joining: Start joins the seeds in the background with capped
//     exponential back-off, and joins again whenever the node finds itself
//     alone, so a seed that boots late, or a lab whose switch rebooted, comes
//     together by itself. WaitJoined tells when it has.
//   - Identity: two nodes with one name (cloned SD cards) are not merged:
//     the newcomer's join fails with a NameConflictError and it stays alone;
//     Config.AcceptMember lets the peer refuse members on its own grounds
//     (colliding libp2p peer IDs).
//   - Departures: Members lists the live nodes; AllMembers also shows who
//     failed (StateDead) and who left with Leave (StateLeft); Config.OnChange
//     says when to look again.
//   - Addresses: IPv4 or IPv6 alike (BindAddr "::1", seeds "[fd00::1]:7946");
//     binding every IPv6 interface ("::") needs an AdvertiseAddr, since
//     memberlist picks one by itself only for "0.0.0.0".
//   - Logging: memberlist's own log lines go to the zerolog Logger at their
//     levels.
//
// Typical use by a peer:
//
//	cfg := gossip.DefaultConfig()
//	cfg.Name, cfg.Key, cfg.Seeds = "pi-kitchen", key, []string{"192.168.1.10:7946"}
//	cfg.Meta = func() []byte { return encodeMyMeta() }
//	cfg.OnChange = func() { replan(g.Members()) }
//	g, err := gossip.New(cfg)
//	...
//	err = g.Start()
//	...
//	defer g.Shutdown()
//	... on SIGTERM: g.Leave(5 * time.Second)
//
// The package knows nothing of neural networks; it carries bytes.
package gossip
