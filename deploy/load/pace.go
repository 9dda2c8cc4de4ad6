package load

import (
	"context"
	"math"
	"sync"
	"time"
)

// MaxScheduled bounds the requests one run may schedule (rate x duration),
// so that the per-request records stay small in memory.
const MaxScheduled = 1_000_000

// ScheduledRequests is how many requests rate x d makes (at least 1, and
// MaxScheduled+1 for anything over MaxScheduled).
func ScheduledRequests(rate float64, d time.Duration) int {
	n := math.Floor(rate * d.Seconds())
	if n > MaxScheduled {
		return MaxScheduled + 1
	}
	return max(1, int(n))
}

// Schedule says when requests go out.
type Schedule struct {
	Total       int     // requests 0..Total-1
	Rate        float64 // per second; request i is due i/Rate s after the start (<= 0: as fast as Concurrency allows)
	Concurrency int     // most calls at once
	// Drop: a request due while Concurrency calls are out is dropped (open
	// loop: a slow cluster shows as drops, not as a lower offered rate);
	// otherwise it waits for a free slot. Only with Rate > 0.
	Drop bool
	// Drain: cancelling Pace's ctx stops the schedule but not the calls
	// already out, which run to their own end (their client's timeout), so
	// that stopping a run early fails none of its requests.
	Drain bool
}

// Run is what Pace did.
type Run struct {
	Outcomes []Outcome // one per scheduled request, in schedule order
	Elapsed  time.Duration
}

// Pace calls do for each request of s. Cancelling ctx stops the schedule
// (the requests not started are left out of the result) and, unless
// s.Drain, is passed to the calls. It returns after every call has
// returned.
func Pace(ctx context.Context, s Schedule, do func(ctx context.Context, i int) Outcome) Run {
	callCtx := ctx
	if s.Drain {
		callCtx = context.WithoutCancel(ctx)
	}
	out := make([]Outcome, s.Total)
	slots := make(chan struct{}, max(s.Concurrency, 1))
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	scheduled := 0
schedule:
	for i := 0; i < s.Total; i++ {
		if s.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / s.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					break schedule
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		if s.Drop && s.Rate > 0 {
			select {
			case slots <- struct{}{}:
			default:
				out[i] = Outcome{Dropped: true, Start: time.Now()}
				scheduled++
				continue
			}
		} else {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				break schedule
			}
		}
		scheduled++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			out[i] = do(callCtx, i) // each goroutine writes its own element
		}()
	}
	wg.Wait()
	return Run{Outcomes: out[:scheduled], Elapsed: time.Since(start)}
}
