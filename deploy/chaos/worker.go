package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
)

// WorkerConfig is what the load generator does in one phase; the suite
// gives it as JSON on the worker's stdin.
type WorkerConfig struct {
	Peers       []string      // the peers' API URLs; request i goes to Peers[i%len] first
	TokenFile   string        // API bearer token
	Images      string        // data set (image folder or tar of one)
	Rate        float64       // requests per second
	Duration    time.Duration // how long to send
	Concurrency int           // most requests in flight; a due request past that is dropped
	Deadline    time.Duration // deadline_ms of every request
	Seed        uint64        // image order
	Bombs       int           // decompression bombs sent at once ...
	BombAt      time.Duration // ... this long after the start
	BombSides   []int         // each bomb's side, in turn
	Hedge       time.Duration // the client's hedge delay (api.Pool.SetHedge); 0: none
}

// ClientHedge is the load worker's hedge delay, as varpar loadgen's
// default.
const ClientHedge = 250 * time.Millisecond

// Record is one request as the load generator saw it.
type Record struct {
	Start     time.Time
	LatencyMS float64
	Dropped   bool     // never sent: Concurrency requests were out
	Status    int      // final HTTP status, 0 for none
	Reason    string   // "" for a 200; else the refusal or transport failure, normalised
	Class     string   // the answer
	Label     string   // the image's class
	Answered  []string // variants fused
	QuorumMet bool
	Peer      string // the peer whose answer (or last failure) was used (its API URL)
	Failovers int    // peers tried beyond the first (connection failures, hedges)
	Bomb      bool   // a decompression bomb, not a client request
}

// digits are masked in reasons so that equal refusals group.
var digits = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)

// Reason normalises a refusal or failure for grouping.
func Reason(status int, msg string) string {
	msg = digits.ReplaceAllString(msg, "N")
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	if status != 0 {
		return fmt.Sprintf("HTTP %d: %s", status, msg)
	}
	return msg
}

// send sends one image through pool, entering at peer first: failing over
// to the next peer on a connection failure and hedging around a peer that
// has not answered within the pool's hedge delay, within the deadline.
func send(ctx context.Context, pool *api.Pool, first int, img []byte, label string, p api.Params) Record {
	r := Record{Start: time.Now(), Label: label}
	rctx, cancel := context.WithDeadline(ctx, r.Start.Add(p.Timeout()))
	resp, tr, err := pool.From(first).ClassifyTrace(rctx, img, p)
	cancel()
	r.LatencyMS = float64(time.Since(r.Start)) / float64(time.Millisecond)
	r.Peer, r.Failovers = tr.URL, max(tr.Tried-1, 0)
	switch {
	case err != nil:
		r.Status, r.Reason = 0, load.ErrorKind(err)
	case resp.Status != http.StatusOK:
		r.Status, r.Reason = resp.Status, Reason(resp.Status, resp.Answer.Error)
		r.QuorumMet = resp.Answer.QuorumMet
		r.Answered = resp.Answer.Answered
	default:
		res := resp.Answer.Result
		r.Status, r.Reason = resp.Status, ""
		r.Class, r.Answered, r.QuorumMet = res.Class, res.Answered, res.QuorumMet
	}
	return r
}

// Work runs cfg and returns every request's record; started is called
// when the images are ready, right before the first request.
func Work(ctx context.Context, cfg WorkerConfig, started func()) ([]Record, error) {
	w, err := load.LoadWorkload(cfg.Images, load.ScheduledRequests(cfg.Rate, cfg.Duration), cfg.Seed, func(string, error) {})
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: cfg.Concurrency}}
	clients, err := api.NewPool(cfg.Peers, 0, api.WithTokenFile(cfg.TokenFile), api.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	clients.SetHedge(cfg.Hedge)
	p := api.Params{Deadline: cfg.Deadline}
	var bombImgs [][]byte
	if cfg.Bombs > 0 {
		for _, side := range cfg.BombSides {
			b, err := Bomb(side)
			if err != nil {
				return nil, err
			}
			bombImgs = append(bombImgs, b)
		}
		if len(bombImgs) == 0 {
			return nil, errors.New("worker: bombs but no bomb sides")
		}
	}
	var (
		bombs   []Record
		bombsMu sync.Mutex
		bombsWG sync.WaitGroup
	)
	if cfg.Bombs > 0 {
		bombsWG.Add(1)
		go func() {
			defer bombsWG.Done()
			t := time.NewTimer(cfg.BombAt)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var wg sync.WaitGroup
			for i := range cfg.Bombs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := send(ctx, clients, i, bombImgs[i%len(bombImgs)], "", p)
					r.Bomb = true
					bombsMu.Lock()
					bombs = append(bombs, r)
					bombsMu.Unlock()
				}()
			}
			wg.Wait()
		}()
	}
	started()
	n := load.ScheduledRequests(cfg.Rate, cfg.Duration)
	recs := make([]Record, n)
	done := load.Pace(ctx, load.Schedule{Total: n, Rate: cfg.Rate, Concurrency: cfg.Concurrency, Drop: true},
		func(ctx context.Context, i int) load.Outcome {
			img, label := w.Request(i)
			recs[i] = send(ctx, clients, i, img, label, p) // each call its own element
			return load.Outcome{Start: recs[i].Start}
		})
	for i, o := range done.Outcomes {
		if o.Dropped {
			recs[i] = Record{Start: o.Start, Dropped: true, Reason: "dropped by the client (concurrency)"}
		}
	}
	recs = recs[:len(done.Outcomes)]
	bombsWG.Wait()
	hc.CloseIdleConnections()
	return append(recs, bombs...), nil
}

// workerMain is the hidden subcommand: config on stdin, records on stdout.
func workerMain() error {
	var cfg WorkerConfig
	if err := json.NewDecoder(os.Stdin).Decode(&cfg); err != nil {
		return fmt.Errorf("worker: config: %w", err)
	}
	if len(cfg.Peers) == 0 || cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Duration > 10*time.Minute {
		return errors.New("worker: want peers, a positive rate and a duration up to 10m")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration+cfg.Deadline+30*time.Second)
	defer cancel()
	recs, err := Work(ctx, cfg, func() { fmt.Println("start") })
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(recs)
}

// trimReason shortens a long reason for the table.
func trimReason(s string) string {
	s = strings.TrimPrefix(s, "HTTP ")
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
