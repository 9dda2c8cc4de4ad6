package local

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
)

// KillRun is a load run with a kill -9 half-way: requests through randomly
// chosen peers, the victim killed after KillAfter of them, the rest through
// the survivors while a watcher notes when they have re-planned. It is
// `varpar demo`'s scenario and a chaos test's.
type KillRun struct {
	Peers       []*Peer // requests go through these (the victim among them)
	Victim      *Peer   // killed with SIGKILL after KillAfter requests
	Requests    int
	KillAfter   int
	Rate        float64 // per second (0: as fast as Concurrency allows)
	Concurrency int     // most requests in flight; due ones wait for a slot
	Seed        uint64  // of the choice of peers
	// Send sends request i through c.
	Send func(ctx context.Context, c *api.Client, i int) load.Outcome
	// Killed, if set, is called right after the victim is dead.
	Killed func()
}

// KillResult is what a KillRun saw.
type KillResult struct {
	Before, After []load.Outcome // the requests before and after the kill, in schedule order
	KilledAt      time.Time      // zero when ctx ended before the kill
	// RecoveredAt is when a survivor's view had dropped the victim and
	// every variant was served again; zero if that had not happened when
	// the requests ended.
	RecoveredAt time.Time
}

// Run runs r. When ctx ends, the requests not yet sent are left out and Run
// returns what it has (the caller checks ctx); the error is for a victim
// that would not die. Every goroutine it starts has ended when it returns.
func (r KillRun) Run(ctx context.Context) (KillResult, error) {
	var res KillResult
	live := slices.DeleteFunc(slices.Clone(r.Peers), func(p *Peer) bool { return p == r.Victim })
	rng := rand.New(rand.NewPCG(r.Seed, 0x3c6ef372fe94f82b))
	var rngMu sync.Mutex // the requests' goroutines draw from one seeded source
	pick := func(ps []*Peer) *Peer {
		rngMu.Lock()
		defer rngMu.Unlock()
		return ps[rng.IntN(len(ps))]
	}
	schedule := func(n int) load.Schedule {
		return load.Schedule{Total: n, Rate: r.Rate, Concurrency: r.Concurrency}
	}

	before := load.Pace(ctx, schedule(r.KillAfter), func(ctx context.Context, i int) load.Outcome {
		return r.Send(ctx, pick(r.Peers).API, i)
	})
	res.Before = before.Outcomes
	if ctx.Err() != nil {
		return res, nil
	}
	if err := r.Victim.Kill(); err != nil {
		return res, err
	}
	res.KilledAt = time.Now()
	if r.Killed != nil {
		r.Killed()
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		// Written before watch.Done, read after watch.Wait.
		res.RecoveredAt, _ = WatchRecovery(watchCtx, live[0].API, r.Victim.Name)
	}()
	after := load.Pace(ctx, schedule(r.Requests-r.KillAfter), func(ctx context.Context, i int) load.Outcome {
		return r.Send(ctx, pick(live).API, r.KillAfter+i)
	})
	stopWatch()
	watch.Wait()
	res.After = after.Outcomes
	return res, nil
}
