// Package consensus is varpar's decision logic, kept free of I/O, goroutines,
// clocks and randomness so that it is tested as plain functions, in the manner
// of etcd's raft/quorum package: plain data in, a small enum out, every edge
// case decided and written down beside the function that decides it.
//
// It answers three questions:
//
//   - Fuse (fuse.go): what do the answers say? It scatters the variants'
//     top-k answers back into one class vector, weighted per variant. It is
//     the one fusion rule that serving, evaluation and training share.
//
//   - Decide (decide.go): is a request decided? From the answers so far, the
//     variants still outstanding and the quorum it says Pending, Decided or
//     NoQuorum. It decides early, without waiting for the variants still out,
//     once the leading class is ahead of the runner-up by more than those
//     variants could still add (the sum of their weights): the answer can no
//     longer change, so the scheduler cancels the rest.
//
//   - Assign (assign.go, rendezvous.go): which peer serves which variant? Every
//     peer computes the same plan from the membership view alone, with no
//     coordinator: weighted rendezvous hashing picks holders in proportion to
//     speed, replicas are spread evenly when there are more peers than
//     variants, peers host several variants least loaded first when there are
//     fewer, memory budgets and pinned variants are honoured, a peer
//     joining or leaving moves few variants, and a variant given only to
//     peers that must first fetch its weights also goes to a peer holding
//     them (a bridge), so that it is served at once.
//
// A request's life, as the peer's scheduler sees it:
//
//	scores := make([]float64, classes)
//	t := consensus.Tally{Weights: family.Weights, Outstanding: asked, Quorum: q}
//	for answer := range answers { // until decided or the deadline
//		t.Answers = append(t.Answers, answer)
//		t.Outstanding = remove(t.Outstanding, answer.Variant)
//		d, err := consensus.Decide(t, scores)
//		...
//		if d.Outcome != consensus.Pending {
//			break // cancel what is still out
//		}
//	}
//	// At the deadline: t.Outstanding = nil; Decide once more.
//
// Nothing here allocates on the request path (Fuse and Decide, for families
// of up to 256 variants); Assign runs when the membership changes.
package consensus
