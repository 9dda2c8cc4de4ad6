package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/internal/stats"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
)

func newBenchCmd() *cobra.Command {
	var (
		dir      string
		threads  int
		batch    int
		asJSON   bool
		duration time.Duration
		minRuns  int
	)
	cmd := &cobra.Command{
		Use:   "bench --family DIR [--threads N] [--json]",
		Short: "Measure each variant's inference latency on this machine",
		Long: `Run every variant of the family on a fixed random input, after a warm-up, and
report the median and 90th-percentile latency of one forward pass (preprocessing excluded;
percentiles by the nearest rank, as loadgen's and demo's).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("--family DIR is required")
			}
			if threads < 0 || batch < 1 || duration <= 0 || minRuns < 1 {
				return usagef("--threads must be >= 0, --batch and --min-runs >= 1, --duration > 0")
			}
			f, err := format.LoadFamily(dir)
			if err != nil {
				return err
			}
			pool := nn.NewPool(threads)
			defer pool.Close()
			rep := benchReport{ISA: nn.ISA(), Threads: pool.Threads(), Batch: batch, GOARCH: runtime.GOARCH}
			for i, m := range f.Models {
				v := f.Manifest.Variants[i]
				times := benchModel(m, pool, batch, duration, minRuns)
				p := stats.Percentiles(times, 0.5, 0.9)
				rep.Variants = append(rep.Variants, benchRow{
					ID: v.ID, MACs: v.Spec.MACs(), Params: v.Spec.Params(),
					MedianMS: ms(p[0]), P90MS: ms(p[1]), Runs: len(times),
				})
			}
			return printBench(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	cmd.Flags().StringVar(&dir, "family", "", "family directory (holding family.json)")
	cmd.Flags().IntVar(&threads, "threads", 0, "compute threads (0: all cores)")
	cmd.Flags().IntVar(&batch, "batch", 1, "images per forward pass")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&duration, "duration", 2*time.Second, "timed period per variant (after a warm-up of a quarter of it)")
	cmd.Flags().IntVar(&minRuns, "min-runs", 20, "time at least this many passes per variant")
	return cmd
}

type benchReport struct {
	ISA      string     `json:"isa"`
	Threads  int        `json:"threads"`
	Batch    int        `json:"batch"`
	GOARCH   string     `json:"goarch"`
	Variants []benchRow `json:"variants"`
}

type benchRow struct {
	ID       string  `json:"id"`
	MACs     int64   `json:"macs"`
	Params   int64   `json:"params"`
	MedianMS float64 `json:"median_ms"`
	P90MS    float64 `json:"p90_ms"`
	Runs     int     `json:"runs"`
}

func benchModel(m *nn.Model, pool *nn.Pool, batch int, d time.Duration, minRuns int) []time.Duration {
	s := m.NewSession(batch, pool)
	in := make([]float32, batch*m.InputSize())
	rng := rand.New(rand.NewSource(1))
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	for start := time.Now(); time.Since(start) < d/4; {
		s.Forward(in)
	}
	var times []time.Duration
	for start := time.Now(); time.Since(start) < d || len(times) < minRuns; {
		t0 := time.Now()
		s.Forward(in)
		times = append(times, time.Since(t0))
	}
	return times
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func printBench(w io.Writer, r benchReport, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	fmt.Fprintf(w, "isa %s, %d thread(s), batch %d\n", r.ISA, r.Threads, r.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tMACs\tmedian ms\tp90 ms\truns\t")
	for _, v := range r.Variants {
		fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%d\t\n", v.ID, human(v.MACs), v.MedianMS, v.P90MS, v.Runs)
	}
	return tw.Flush()
}
