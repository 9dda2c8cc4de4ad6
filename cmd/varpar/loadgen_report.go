package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/varpar/varpar/deploy/load"
)

// printLoadSummary prints loadgen's report for people (--json prints the
// Summary itself).
func printLoadSummary(w io.Writer, s load.Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "requests    %d scheduled, %d sent, %d dropped", s.Scheduled, s.Sent, s.Dropped)
	if s.Dropped > 0 && s.Concurrency > 0 {
		fmt.Fprintf(&b, " (%d already in flight)", s.Concurrency)
	}
	fmt.Fprintf(&b, "\nsuccesses   %d\n", s.Successes)
	if len(s.Errors) == 0 {
		fmt.Fprintf(&b, "errors      none\n")
	} else {
		kinds := make([]string, 0, len(s.Errors))
		for k := range s.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for i, k := range kinds {
			label := "errors"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(&b, "%-11s %d %s", label, s.Errors[k], k)
			if m := s.ErrorSamples[k]; m != "" {
				fmt.Fprintf(&b, " (first: %s)", m)
			}
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "throughput  %.1f requests/s over %.1fs\n", s.Throughput, s.ElapsedS)
	fmt.Fprintf(&b, "latency     p50 %.1fms  p90 %.1fms  p99 %.1fms  max %.1fms\n", s.Latency.P50, s.Latency.P90, s.Latency.P99, s.Latency.Max)
	switch {
	case s.Healthz:
	case s.Accuracy != nil:
		fmt.Fprintf(&b, "accuracy    %.2f%% (%d of %d)\n", 100**s.Accuracy, s.Correct, s.Labelled)
	default:
		fmt.Fprintf(&b, "accuracy    n/a (the answers' classes are not the data set's)\n")
	}
	if !s.Healthz {
		fmt.Fprintf(&b, "variants    %.2f answering on average\n", s.MeanAnswering)
	}
	if len(s.Variants) > 0 {
		fmt.Fprintf(&b, "in peer     p50 %.2fms  p90 %.2fms (the initiating peer's own time)\n", s.InPeer.P50, s.InPeer.P90)
		ids := make([]string, 0, len(s.Variants))
		for v := range s.Variants {
			ids = append(ids, v)
		}
		sort.Strings(ids)
		for _, v := range ids {
			vs := s.Variants[v]
			fmt.Fprintf(&b, "  %-10s answered %5d: arrived p50 %.2fms p90 %.2fms; compute p50 %.3fms\n",
				v, vs.Answers, vs.Arrived.P50, vs.Arrived.P90, vs.Compute.P50)
		}
	}
	fmt.Fprintf(&b, "bytes       %.0f sent, %.0f received per request (HTTP)\n", s.BytesSent, s.BytesReceived)
	_, err := io.WriteString(w, b.String())
	return err
}
