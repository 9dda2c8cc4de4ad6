package api

import (
	"context"
	"sync"
	"time"
)

// hedged calls do with the pool's peers from first on, failing over on
// connection errors and retryable refusals as try does. With a hedge delay, when the first
// attempt has no answer after it, a second attempt starts with the next
// peer not yet tried, the peer the first attempt waits on is skipped for
// the dead time, and the first attempt to end with an answer (or the last
// one to end, with its error) is used; the other is cancelled and waited
// for, so no goroutine outlives the call.
func hedged[T any](p *Pool, ctx context.Context, first int, do func(context.Context, *Client) (T, error)) (T, Trace, error) {
	order := p.order(first)
	delay := time.Duration(p.hedge.Load())
	var tr Trace
	if delay <= 0 || len(order) < 2 {
		var v T
		err := p.try(ctx, first, func(c *Client) error {
			var err error
			tr.URL, tr.Tried = c.URL(), tr.Tried+1
			v, err = do(ctx, c)
			return err
		})
		return v, tr, err
	}

	type result struct {
		v    T
		err  error
		peer int
	}
	var (
		mu      sync.Mutex
		next    int         // position in order of the next peer to try
		current = []int{-1} // per attempt: the peer it waits on
	)
	take := func(a int) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(order) {
			return 0, false
		}
		i := order[next]
		next++
		current[a] = i
		return i, true
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	var wg sync.WaitGroup
	attempt := func(a int) {
		defer wg.Done()
		r := result{peer: -1}
		for {
			i, ok := take(a)
			if !ok {
				break
			}
			r.peer = i
			if r.v, r.err = do(hctx, p.clients[i]); r.err == nil || !again(hctx, r.err) {
				break
			}
			p.setDeadUntil(i, p.now().Add(p.deadFor))
		}
		results <- r
	}
	wg.Add(1)
	go attempt(0)
	running := 1
	timer := time.NewTimer(delay)
	defer timer.Stop()
	last := result{peer: -1}
	for running > 0 {
		select {
		case <-timer.C:
			mu.Lock()
			stalled, more := current[0], next < len(order)
			if more {
				current = append(current, -1)
			}
			mu.Unlock()
			if !more {
				continue
			}
			if stalled >= 0 {
				p.setDeadUntil(stalled, p.now().Add(p.deadFor))
			}
			wg.Add(1)
			running++
			go attempt(1)
		case r := <-results:
			running--
			if r.peer < 0 { // no peer was left for it
				continue
			}
			last = r
			if r.err == nil || running == 0 {
				timer.Stop()
				cancel()
				wg.Wait()
				running = 0
			}
		}
	}
	mu.Lock()
	tr.Tried = next
	mu.Unlock()
	if last.peer >= 0 {
		tr.URL = p.clients[last.peer].URL()
		if last.err == nil {
			p.setDeadUntil(last.peer, time.Time{})
		}
	}
	return last.v, tr, last.err
}
