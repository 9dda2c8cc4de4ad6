// Package local runs a varpar cluster on one machine: N `varpar peer`
// processes of a built binary on 127.0.0.1, each with free ports, a data
// directory and a log file under one temporary directory, and a fresh
// cluster key. It is what `make demo` (varpar demo), the cluster tests of
// cmd/varpar, bench/cluster and the chaos suite (deploy/chaos) stand their
// clusters up with: start peers (Cluster.Start), wait until they agree on
// the plan and serve it (Cluster.WaitReady), kill -9 one (Peer.Kill) or stop
// it gracefully (Peer.Stop), read its last log lines (Peer.Tail, LogTails),
// run load through them with a kill -9 half-way (KillRun), and take
// everything down (Cluster.Shutdown).
//
// Every goroutine has an owner: each peer process has one waiter, which
// ends when the process does. Shutdown sends SIGTERM, then SIGKILL, and
// returns once every peer process has exited and been waited for (or with an
// error naming one that outlived SIGKILL by 10 s). Shutdown is idempotent:
// later calls return the first one's error.
//
// A Spec's Host and Wrap start a peer on another address under a wrapper
// command: the chaos suite (deploy/chaos) runs each peer in its own network
// namespace with Wrap ip netns exec NAME and Host the namespace's address.
//
// Peers talk to the test or the tool through their HTTP API (Peer.API, a
// peer/api client); nothing here links the peer code in.
package local
