//go:build linux

package main

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/gossip"
	"github.com/varpar/varpar/peer/api"
)

// TestClusterSurvivesKill: kill -9 a peer that alone serves a variant. Every
// request still succeeds within its deadline, without that variant, until the
// others declare it dead and re-plan; then all variants answer again.
func TestClusterSurvivesKill(t *testing.T) {
	const deadline, margin = 400 * time.Millisecond, 150 * time.Millisecond
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 1)
	ps := startPeers(t, c, named("k", 4)...)
	cv := waitReady(t, c, ps)
	victimName, sole := local.ChooseVictim(cv, c.Names())
	if len(sole) == 0 {
		t.Fatalf("plan %v: no peer serves a variant alone", cv.Assignment)
	}
	victim := c.ByName(victimName)
	live := slices.DeleteFunc(slices.Clone(ps), func(p *local.Peer) bool { return p == victim })

	type record struct {
		start   time.Time
		took    time.Duration
		status  int
		err     string
		results api.ClassifyAnswer
	}
	var (
		mu      sync.Mutex
		records []record
		stop    = make(chan struct{})
		senders sync.WaitGroup
	)
	for g := range 2 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for n := range 3000 { // bounded; stopped long before
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				p := live[(g+n)%len(live)]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				resp, err := p.API.Classify(ctx, img, api.Params{Quorum: 1, Deadline: deadline})
				r := record{start: start, took: time.Since(start)}
				cancel()
				if err != nil {
					r.err = err.Error()
				} else {
					r.status, r.results = resp.Status, resp.Answer
				}
				mu.Lock()
				records = append(records, r)
				mu.Unlock()
			}
		}()
	}
	stopSenders := sync.OnceFunc(func() { close(stop); senders.Wait() })
	defer stopSenders()

	time.Sleep(time.Second)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	// Probe with quorum = every variant: refused (503, naming the missing
	// variant) until the dead peer's variants are served again.
	var recoveredAt time.Time
	refused := 0
	for probe := 0; recoveredAt.IsZero(); probe++ {
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("all variants still not answering 30s after the kill (%d probes refused)", refused)
		}
		resp, took := classifyAt(t, live[probe%len(live)], img, api.Params{Quorum: 4, Deadline: deadline})
		if took > deadline+margin {
			t.Errorf("probe %d took %s, deadline %s", probe, took, deadline)
		}
		switch resp.Status {
		case http.StatusOK:
			if len(resp.Answer.Answered) == 4 {
				recoveredAt = time.Now()
			}
		case http.StatusServiceUnavailable:
			refused++
			if resp.Answer.Error == "" || resp.Answer.QuorumMet || len(resp.Answer.Missing) == 0 {
				t.Errorf("503 body %s: want the error, quorum_met false and the missing variants", resp.Body)
			}
		default:
			t.Fatalf("probe %d: %v", probe, resp.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all variants answer again %.1fs after the kill, %d quorum-4 probes refused before", recoveredAt.Sub(killedAt).Seconds(), refused)
	time.Sleep(500 * time.Millisecond)
	stopSenders()

	// Gossip declares a member dead at the earliest a confirmed suspicion
	// after it stops answering: no re-plan before that.
	g := gossip.DefaultConfig()
	replanAfter := time.Duration(g.SuspicionMult) * g.ProbeInterval
	before, during, after := 0, 0, 0
	for _, r := range records {
		if r.err != "" || r.status != http.StatusOK {
			t.Errorf("request at +%s: status %d %s %s", r.start.Sub(killedAt), r.status, r.err, r.results.Error)
			continue
		}
		if r.took > deadline+margin {
			t.Errorf("request at +%s took %s, deadline %s", r.start.Sub(killedAt), r.took, deadline)
		}
		switch {
		case r.start.Before(killedAt):
			before++
		case r.start.Before(killedAt.Add(replanAfter)) && r.start.Before(recoveredAt):
			// Before the re-plan could have happened: the dead peer's
			// variants cannot answer.
			during++
			for _, v := range sole {
				if slices.Contains(r.results.Answered, v) {
					t.Errorf("request at +%s: answered by %s, which only the dead peer served", r.start.Sub(killedAt), v)
				}
			}
		default:
			after++
		}
	}
	if before < 10 || during < 10 || after < 10 {
		t.Errorf("requests before the kill, while degraded and after: %d, %d, %d; want at least 10 each", before, during, after)
	}
	for _, p := range live {
		cv, err := p.API.Cluster(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cv.HasMember(victimName) || !cv.AllServed() {
			t.Errorf("%s after recovery: members %v, serving %v", p.Name, cv.Members, cv.Serving)
		}
	}
}
