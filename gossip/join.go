package gossip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// errAlone is a join attempt's outcome when every seed that answered was this
// node itself (the first node of a cluster, whose seed list names it too), or
// answered without our view showing another member yet.
var errAlone = errors.New("gossip: no other member reachable")

// joinLoop keeps this node in a cluster: whenever it sees no other member (at
// Start, and again if every other member fails or leaves), it joins the seeds,
// retrying with back-off. Between such spells it sleeps until the membership
// changes. It stops on ctx, on a conflict that retrying cannot fix, or after
// Config.JoinRetries failed attempts in a row.
func (g *Gossip) joinLoop(ctx context.Context, ml *memberlist.Memberlist) {
	defer g.wg.Done()
	backoff := g.cfg.JoinBackoff
	failures := 0
	for {
		if g.view.others() > 0 {
			if g.finishJoin(nil) {
				g.log.Info().Int("members", g.view.size()).Msg("gossip: joined the cluster")
			}
			backoff, failures = g.cfg.JoinBackoff, 0
			// A seed that was not listening when this node joined others
			// may hold a cluster of its own (devices boot in any order):
			// knock on the seeds that are not members now and then, so that
			// two halves merge.
			t := time.NewTimer(g.cfg.JoinMaxBackoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-g.wake:
				t.Stop()
				continue
			case <-t.C:
				g.joinMissingSeeds(ctx, ml)
				continue
			}
		}

		err := g.joinSeeds(ctx, ml)
		if ctx.Err() != nil {
			return
		}
		if g.view.others() > 0 {
			continue
		}
		if err == nil {
			err = errAlone
		}
		failures++
		g.setLastJoinErr(err)

		var conflict *NameConflictError
		if errors.As(err, &conflict) && conflict.permanent() {
			g.log.Error().Err(conflict).Msg("gossip: not joining: this node's name is taken; stopped trying")
			g.finishJoin(err)
			return
		}
		if g.cfg.JoinRetries > 0 && failures >= g.cfg.JoinRetries {
			err = fmt.Errorf("%w after %d attempts: %w", ErrJoinFailed, failures, err)
			g.log.Error().Err(err).Msg("gossip: stopped trying to join")
			g.finishJoin(err)
			return
		}
		ev := g.log.Warn()
		if errors.Is(err, errAlone) {
			ev = g.log.Debug()
		}
		ev.Err(err).Int("attempt", failures).Dur("retry_in", backoff).Msg("gossip: join failed, will retry")
		if !g.sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, g.cfg.JoinMaxBackoff)
	}
}

// joinMissingSeeds joins the seeds whose address is not an alive member's.
// Failures are expected (a seed that is down) and only logged at debug.
func (g *Gossip) joinMissingSeeds(ctx context.Context, ml *memberlist.Memberlist) {
	alive := map[string]bool{}
	for _, m := range g.view.alive() {
		alive[m.Address()] = true
	}
	for _, seed := range g.cfg.Seeds {
		if ctx.Err() != nil || alive[seed] {
			continue
		}
		if _, err := ml.Join([]string{seed}); err != nil {
			g.log.Debug().Err(g.classifyJoinError(seed, err)).Msg("gossip: seed outside the cluster still unreachable")
		}
	}
}

// joinSeeds makes one join attempt: every seed in turn, so that ctx is
// checked between them and a failure names its seed. It returns nil if any
// seed answered and accepted the exchange.
func (g *Gossip) joinSeeds(ctx context.Context, ml *memberlist.Memberlist) error {
	var errs joinErrors
	ok := false
	for _, seed := range g.cfg.Seeds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.refusal.Store(nil)
		if _, err := ml.Join([]string{seed}); err != nil {
			errs = append(errs, g.classifyJoinError(seed, err))
			continue
		}
		ok = true
	}
	if ok {
		return nil
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

// classifyJoinError turns memberlist's flattened join error back into one
// that callers can test with errors.Is and errors.As.
func (g *Gossip) classifyJoinError(seed string, err error) error {
	// memberlist wraps one error per address in a multierror; with one seed
	// the inner one is the readable part.
	cause := err
	if inner := errors.Unwrap(err); inner != nil {
		cause = inner
	}
	text := cause.Error()
	if _, after, ok := strings.Cut(text, "failed to join "); ok {
		if _, after, ok := strings.Cut(after, ": "); ok {
			text = after // the address is in our own prefix
		}
	}
	if r := g.refusal.Load(); r != nil && strings.Contains(text, (*r).Error()) {
		return fmt.Errorf("%w (seed %s)", *r, seed)
	}
	// memberlist's texts for a peer that cannot decrypt us, or sends clear
	// text while we require encryption (security.go, net.go).
	if strings.Contains(text, "no installed keys could decrypt") || strings.Contains(text, "remote state is not encrypted") ||
		strings.Contains(text, "encryption is not configured") {
		return fmt.Errorf("%w with seed %s (is the cluster key the same on every node?): %s", ErrKeyMismatch, seed, text)
	}
	return fmt.Errorf("gossip: seed %s: %s", seed, text)
}

// sleep waits d, or less if another member shows up meanwhile; it reports
// false if ctx ended.
func (g *Gossip) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-g.wake:
			if g.view.others() > 0 {
				return true
			}
		}
	}
}

// finishJoin ends the join phase that WaitJoined waits for, with err (nil:
// joined). It reports whether this call ended it.
func (g *Gossip) finishJoin(err error) bool {
	done := false
	g.joinOnce.Do(func() {
		g.joinMu.Lock()
		g.joinErr = err
		g.joinMu.Unlock()
		close(g.joined)
		done = true
	})
	return done
}

func (g *Gossip) setLastJoinErr(err error) {
	g.joinMu.Lock()
	g.lastJoinErr = err
	g.joinMu.Unlock()
}

// WaitJoined waits until this node has joined a cluster, that is, seen
// another member (at once if Config.Seeds is empty: there is nothing to
// join). It returns nil then; the join loop's final error if it stopped
// trying (a *NameConflictError with another live device holding this node's
// name, or ErrJoinFailed after Config.JoinRetries); and if ctx ends first,
// ctx's error together with the last attempt's (both match errors.Is).
// After Leave, a join phase that had not ended never will: ErrLeft.
func (g *Gossip) WaitJoined(ctx context.Context) error {
	switch g.lifecycle() {
	case stateNew:
		return ErrNotStarted
	case stateShutdown:
		return ErrShutdown
	case stateLeft:
		select {
		case <-g.joined:
		default:
			return ErrLeft
		}
	}
	select {
	case <-g.joined:
		g.joinMu.Lock()
		defer g.joinMu.Unlock()
		return g.joinErr
	case <-ctx.Done():
		g.joinMu.Lock()
		last := g.lastJoinErr
		g.joinMu.Unlock()
		if last == nil {
			return fmt.Errorf("gossip: not joined yet: %w", ctx.Err())
		}
		return fmt.Errorf("gossip: not joined yet: %w; last attempt: %w", ctx.Err(), last)
	case <-g.stopped:
		return ErrShutdown
	}
}
