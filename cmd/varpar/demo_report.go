package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/peer/api"
)

// printMoves prints the plan a live peer now has and how many variants the
// survivors took on, next to the least they had to: the victim's sole ones.
func printMoves(w io.Writer, before *api.ClusterView, c *api.Client, victim string, least int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now, err := c.Cluster(ctx)
	if err != nil {
		return
	}
	had := map[string][]string{}
	for _, m := range before.Members {
		had[m.Name] = m.Variants
	}
	plan := local.PlanByMember(now)
	took := 0
	fmt.Fprintf(w, "the plan now:")
	for _, m := range now.Members {
		fmt.Fprintf(w, " %s serves %s;", m.Name, listOrDash(plan[m.Name]))
		for _, v := range plan[m.Name] {
			if !slices.Contains(had[m.Name], v) {
				took++
			}
		}
	}
	fmt.Fprintf(w, " the survivors took on %d variant(s); %d at the least (what %s alone served)\n", took, least, victim)
}

// printDemoTable prints one row per phase that has requests; after the kill,
// split at the re-plan when there was one.
func printDemoTable(w io.Writer, before, after []load.Outcome, recoveredAt time.Time, classes map[string]bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\taccuracy\tp50\tp99\tvariants answering\tfailures\t")
	row := func(name string, outs []load.Outcome) {
		if len(outs) == 0 {
			return
		}
		s := load.Summarize(outs, 0, classes)
		acc := "-"
		if s.Accuracy != nil {
			acc = fmt.Sprintf("%.2f%%", 100**s.Accuracy)
		}
		p50, p99 := "-", "-"
		if s.Successes > 0 {
			p50, p99 = fmt.Sprintf("%.1fms", s.Latency.P50), fmt.Sprintf("%.1fms", s.Latency.P99)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2f\t%d\t\n", name, s.Scheduled, acc, p50, p99, s.MeanAnswering, s.Scheduled-s.Successes)
	}
	row("before kill", before)
	row("after kill", after)
	if !recoveredAt.IsZero() {
		var degraded, replanned []load.Outcome
		for _, o := range after {
			if o.Start.Before(recoveredAt) {
				degraded = append(degraded, o)
			} else {
				replanned = append(replanned, o)
			}
		}
		row("until re-plan", degraded)
		row("after re-plan", replanned)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "(variants answering: answers fused per request; a request is decided as soon as the\n"+
		" variants still out cannot change the class, so it rarely waits for every variant)")
	return err
}
