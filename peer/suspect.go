package peer

import "time"

// The scheduler's own failure detection. Gossip takes seconds to declare a
// member dead (gossip.Config's failure detection), and a member behind a slow
// link is never declared dead at all; until then every request would wait for
// it. So the scheduler also learns from its calls:
//
//   - A replica whose call failed (refused, reset, an error answer) or was
//     still out at the request's deadline is suspected at once, and so is one
//     still out when another replica of its variant answered (hedged around:
//     far slower than its peer), and one whose call is still out after its
//     patience: patienceMult times its usual latency, within
//     [minPatience, maxPatience]. A frozen or cut-off peer is then routed
//     around within a fraction of a second, by the requests already waiting
//     for it too, instead of at each peer's first deadline.
//   - A suspect is asked last: another replica of its variant, if there is
//     one, is asked first, and the suspect only through the hedge.
//   - A variant with no replica above suspicion is still asked (its answer,
//     if it comes in time, counts), but the request does not wait for it once
//     the other variants decide the answer without it; when they cannot (the
//     quorum needs it, or it could still change the class), the request waits
//     for it as for any other, up to the deadline. Leaving it out cannot make
//     an answer wrong, only based on fewer variants, and it is marked early.
//   - After the suspicion's back-off the suspect is probed: the next request
//     asks it first. A probe that answers in time clears the suspicion; one
//     that fails doubles the back-off (up to suspectMaxBackoff), and one
//     cancelled before answering (too slow for a request that decided
//     without it) keeps it.

const (
	suspectBackoff    = 1 * time.Second  // a first suspicion: a probe after 1 s
	suspectMaxBackoff = 30 * time.Second // a replica dead for good: one probe call per 30 s

	// A call out longer than patienceMult times the replica's average
	// latency suspects it; never sooner than minPatience (a replica not yet
	// measured, or answering in microseconds on loopback), never later than
	// maxPatience (a slow device's average would otherwise let a frozen one
	// hold requests for most of the 2 s default deadline).
	patienceMult = 8
	minPatience  = 300 * time.Millisecond
	maxPatience  = 1 * time.Second
)

// standing ranks a replica for order: due for a probe, trusted, suspect.
type standing int

const (
	standingProbe   standing = iota // suspected, back-off over, no probe out
	standingTrusted                 // never suspected, or cleared
	standingSuspect                 // suspected, in its back-off or being probed
)

// standingLocked is key's standing at now; s.mu is held.
func (s *scheduler) standingLocked(key replicaKey, now time.Time) standing {
	st := s.stats[key]
	switch {
	case st == nil || !st.suspect:
		return standingTrusted
	case st.probing == 0 && !now.Before(st.suspectUntil):
		return standingProbe
	}
	return standingSuspect
}

// anyTrusted reports whether any of reps (replicas of variant) is trusted.
func (s *scheduler) anyTrusted(variant int, reps []replica) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, r := range reps {
		if s.standingLocked(replicaKey{r.Name, variant}, now) == standingTrusted {
			return true
		}
	}
	return false
}

// suspected reports whether key is suspected (in its back-off or not).
func (s *scheduler) suspected(key replicaKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[key]
	return st != nil && st.suspect
}

// suspectFor suspects key, for a back-off that doubles when failed and the
// replica was suspected already.
func (s *scheduler) suspectFor(key replicaKey, failed bool, why string) {
	s.mu.Lock()
	st := s.stats[key]
	if st == nil {
		st = &replicaStats{}
		s.stats[key] = st
	}
	was := st.suspect
	switch {
	case !was:
		st.backoff = s.minBackoff
	case failed:
		st.backoff = min(2*st.backoff, s.maxBackoff)
	}
	st.suspect = true
	st.suspectUntil = s.now().Add(st.backoff)
	backoff := st.backoff
	if !was {
		// Wake the requests waiting: the variant may now be one they need
		// not wait for.
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	if !was {
		if s.metrics != nil {
			s.metrics.suspected.Inc()
		}
		s.log.Info().Str("replica", key.member).Int("variant", key.variant).Str("why", why).
			Dur("backoff", backoff).Msg("replica suspected: asked last until probed")
	}
}

// suspicionChanged returns a channel closed when a replica next becomes
// suspected.
func (s *scheduler) suspicionChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// patienceLocked is how long a call to the replica of st may be out before it
// is suspected; s.mu is held.
func (s *scheduler) patienceLocked(st *replicaStats) time.Duration {
	return min(max(patienceMult*st.latency, s.minPatience), s.maxPatience)
}

// slowerThan suspects key, still out when faster answered for its variant,
// unless it is suspected already.
func (s *scheduler) slowerThan(key replicaKey, faster string) {
	if !s.suspected(key) {
		s.suspectFor(key, false, "slower than "+faster)
	}
}

// trust clears key's suspicion after a call that answered in took.
func (s *scheduler) trust(key replicaKey, took time.Duration) {
	s.mu.Lock()
	st := s.stats[key]
	was := st != nil && st.suspect
	if was {
		st.suspect, st.backoff = false, 0
		// Its average came from before (or never was): start again.
		st.latency = took
	}
	s.mu.Unlock()
	if was {
		s.log.Info().Str("replica", key.member).Int("variant", key.variant).Msg("replica answered its probe: trusted again")
	}
}
