package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// WaitReady waits until every peer in ps answers /readyz, sees exactly ps
// as members, every variant served and the plan settled, and returns the
// first peer's view. On timeout the error says what each peer still lacks,
// with its last logs; a peer that exits meanwhile is an error at once.
func (c *Cluster) WaitReady(ctx context.Context, ps []*Peer, timeout time.Duration) (*api.ClusterView, error) {
	var want []string
	for _, p := range ps {
		want = append(want, p.Name)
	}
	slices.Sort(want)
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		var lacking []string
		var first *api.ClusterView
		for i, p := range ps {
			if p.Exited() {
				return nil, fmt.Errorf("peer %s exited while the cluster formed (%v)%s", p.Name, p.ExitErr(), LogTails([]*Peer{p}, 15))
			}
			cv, why := p.readiness(ctx, want)
			if why != "" {
				lacking = append(lacking, p.Name+": "+why)
			} else if i == 0 {
				first = cv
			}
		}
		if len(lacking) == 0 {
			return first, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the cluster did not form within %s:\n  %s%s", timeout, strings.Join(lacking, "\n  "), LogTails(ps, 8))
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("interrupted while the cluster formed")
		case <-tick.C:
		}
	}
}

// readiness returns the peer's view, or why it is not ready yet.
func (p *Peer) readiness(ctx context.Context, want []string) (*api.ClusterView, string) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := p.API.Ready(rctx); err != nil {
		return nil, "readyz: " + err.Error()
	}
	cv, err := p.API.Cluster(rctx)
	if err != nil {
		return nil, "cluster: " + err.Error()
	}
	var got []string
	for _, m := range cv.Members {
		got = append(got, m.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return nil, fmt.Sprintf("sees members %v, want %v", got, want)
	}
	for _, v := range cv.Variants {
		if len(cv.Serving[v]) == 0 {
			return nil, "no member serves " + v + " yet"
		}
	}
	if why := PlanSettled(cv); why != "" {
		return nil, why
	}
	return cv, ""
}

// PlanSettled says why the members do not serve exactly what the plan gives
// them ("" when they do): after a join, a peer keeps the variants it hands
// over until their new holder announces them.
func PlanSettled(cv *api.ClusterView) string {
	planned := PlanByMember(cv)
	for _, m := range cv.Members {
		want := slices.Sorted(slices.Values(planned[m.Name]))
		got := slices.Sorted(slices.Values(m.Variants))
		if !slices.Equal(got, want) {
			return fmt.Sprintf("%s serves %v, the plan gives it %v", m.Name, got, want)
		}
	}
	return ""
}

// PlanByMember turns the view's plan (variant → members) around: member →
// the variants the plan gives it, sorted.
func PlanByMember(cv *api.ClusterView) map[string][]string {
	plan := map[string][]string{}
	for v, holders := range cv.Assignment {
		for _, m := range holders {
			plan[m] = append(plan[m], v)
		}
	}
	for _, vs := range plan {
		slices.Sort(vs)
	}
	return plan
}

// ChooseVictim picks among candidates the peer whose death costs the most
// variants: the one that alone serves the most variants (ties: the first by
// name), and returns those variants. With every variant replicated, it
// picks the first by name.
func ChooseVictim(cv *api.ClusterView, candidates []string) (string, []string) {
	names := slices.Sorted(slices.Values(candidates))
	best, bestSole := "", []string(nil)
	for _, n := range names {
		var sole []string
		for _, v := range cv.Variants {
			if s := cv.Serving[v]; len(s) == 1 && s[0] == n {
				sole = append(sole, v)
			}
		}
		if best == "" || len(sole) > len(bestSole) {
			best, bestSole = n, sole
		}
	}
	return best, bestSole
}

// WatchRecovery polls c every 200 ms until its view no longer holds victim
// and every variant is served, and returns when it saw that; ok is false
// when ctx ended first.
func WatchRecovery(ctx context.Context, c *api.Client, victim string) (at time.Time, ok bool) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cv, err := c.Cluster(rctx)
		cancel()
		if err == nil && !cv.HasMember(victim) && cv.AllServed() {
			return time.Now(), true
		}
	}
}
