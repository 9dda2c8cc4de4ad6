// Command chaos is varpar's chaos suite (`make chaos`, `make chaos-short`):
// real `varpar peer` processes (started with deploy/local), each in its own
// network namespace on a bridge of its own, serving the CIFAR-10 family
// (models/cifar10) to a load generator in one more namespace that sends real
// CIFAR-10 test images; then one bounded phase after another, each with a
// baseline window, a fault and a recovery window:
//
//   - kill -9 of the peer whose death costs the most variants, restarted
//     with the same data directory, and again with an empty one (and a family
//     directory holding only family.json);
//   - SIGSTOP and SIGCONT (a frozen device);
//   - a partition: iptables DROP rules in the minority's namespaces;
//   - a slow link: tc tbf on both ends of one peer's veth;
//   - a slow device: a cgroup v1 cpu quota on one peer;
//   - a restart storm;
//   - random bytes to every peer's gossip (UDP and TCP) and libp2p ports, and
//     an outsider peer with another cluster key;
//   - a decompression-bomb burst: a small PNG declaring 6300x6300 pixels
//     (under the default pixel limit), generated in code.
//
// Every phase reports the requests sent, answered, refused (by reason), past
// their deadline beyond an allowance, answered below quorum; accuracy;
// p50/p99 per window; per variant the seconds no member served it (a live
// peer's /v1/cluster polled every 250 ms); each peer's RSS (/proc) and
// goroutines (/metrics) before, at peak and after; the seconds until the view
// dropped the faulted peers and until view and plan settled after the heal;
// the log lines the peers wrote. It writes JSON and a markdown table.
//
// Network: the bridge and the host ends of the veth pairs live in the root
// namespace, addressed from one /24 of 198.18.0.0/15 picked at random among
// the unused ones; names carry a random run id so that parallel runs do not
// collide. Everything created (namespaces, links, cgroups, processes, files)
// is removed on exit, on failure and on SIGINT/SIGTERM.
//
// It needs root and ip(8), tc(8) and iptables(8). Without them, --short
// prints a SKIP line and exits 0 (make test); the full run fails with the
// reason. --short asserts only what the current code guarantees (no peer
// crashes, the outsider is refused, every phase answers requests); --bars
// checks the bars of issue 10 and says which fail.
//
// The load generator is this program itself, run again under
// ip netns exec with the hidden subcommand "worker" (worker.go).
package main
