package nn

import (
	"runtime"
	"sync"
)

// Pool is a bounded set of compute goroutines that a Session splits each layer
// across. It is the only place package nn starts goroutines. The zero number of
// workers is not allowed; a Pool of one runs everything on the caller's goroutine.
//
// A Pool may be shared by several Sessions: parts of different calls interleave
// but never share a buffer, since each part writes only its own slice of its own
// session's output.
type Pool struct {
	n     int
	jobs  chan job
	wg    sync.WaitGroup
	close sync.Once
}

// Task is a unit of work divided into parts: RunPart(i, n) computes part i of
// n, touching only memory that no other part touches. The trainer in nn/train
// runs its phases on the same Pool as inference through it.
type Task interface {
	RunPart(i, n int)
}

type job struct {
	p    Task
	i, n int
	done *sync.WaitGroup
}

// NewPool starts a pool of n workers, n clamped to [1, GOMAXPROCS]; n <= 0
// means GOMAXPROCS. With n == 1 no goroutine is started.
func NewPool(n int) *Pool {
	if max := runtime.GOMAXPROCS(0); n > max || n <= 0 {
		n = max
	}
	p := &Pool{n: n}
	if n > 1 {
		p.jobs = make(chan job, n)
		for i := 0; i < n-1; i++ {
			p.wg.Add(1)
			go p.worker()
		}
	}
	return p
}

// Threads reports how many goroutines (the caller's included) share the work.
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.n
}

func (p *Pool) worker() {
	defer p.wg.Done()
	for j := range p.jobs {
		j.p.RunPart(j.i, j.n)
		j.done.Done()
	}
}

// Run splits w into parts (at most the pool size) and returns when all are
// done. The caller's goroutine computes part 0. done is the caller's
// WaitGroup, kept by the caller so that Run does not allocate; one caller may
// not use it for two Runs at once. A nil Pool runs w as one part.
func (p *Pool) Run(w Task, parts int, done *sync.WaitGroup) {
	if p == nil || p.n == 1 || parts <= 1 {
		w.RunPart(0, 1)
		return
	}
	if parts > p.n {
		parts = p.n
	}
	done.Add(parts - 1)
	for i := 1; i < parts; i++ {
		p.jobs <- job{p: w, i: i, n: parts, done: done}
	}
	w.RunPart(0, parts)
	done.Wait()
}

// Close stops the workers and waits for them to exit. It is safe to call twice.
// No Session may be running on the pool when Close is called.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.close.Do(func() {
		if p.jobs != nil {
			close(p.jobs)
		}
		p.wg.Wait()
	})
}
