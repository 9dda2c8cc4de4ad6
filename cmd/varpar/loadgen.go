package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
)

type loadgenOpts struct {
	peers       []string
	images      string
	rate        float64
	duration    time.Duration
	concurrency int
	params      api.Params
	tokenFile   string
	hedge       time.Duration
	asJSON      bool
	seed        uint64
	spread      string
	healthz     bool
}

func newLoadgenCmd() *cobra.Command {
	o := loadgenOpts{}
	cmd := &cobra.Command{
		Use:   "loadgen --peer URL[,URL...] --images PATH --rate R --duration D [flags]",
		Short: "Load a cluster with classify requests at a fixed rate and report latency and accuracy",
		Long: `Send classify requests open-loop: R requests per second for D, whether or not earlier
requests have been answered, spread over the peers (round-robin or at random). At most
--concurrency requests are in flight; a request due while that many are outstanding is
dropped and counted, not delayed, so that a slow cluster shows up as drops and latency
rather than as a lower offered rate.

PATH is an image folder (one sub-folder per class), a tar archive of one, or an MNIST
IDX images file (labels beside it). Images are decoded once, re-encoded as PNG and sent
in a shuffled order fixed by --seed, repeating when the run needs more requests than
there are images.

Prints the requests scheduled, sent and dropped, successes, errors by kind, throughput,
latency percentiles (of successful requests, as the client saw them), accuracy (when the
answers use the data set's class names), the mean number of variants answering, and the
bytes sent and received per request on the HTTP connections; then where the time went:
the initiating peer's own latency and, per variant, when its answers arrived and what
they cost to compute.

With several --peer URLs, a request whose peer cannot be reached goes to the next one,
and a request whose peer has not answered within --client-hedge also goes to the next
one (the first answer counts, the stalled peer is skipped for a few seconds).

--healthz sends GET /healthz instead, paced the same way (no images needed): the HTTP
round trip alone, the floor under every classify latency.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runLoadgen(cmd, o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.peers, "peer", nil, "peers' HTTP APIs (comma-separated http://host:port)")
	f.StringVar(&o.images, "images", "", "image folder, tar archive or MNIST IDX images file")
	f.Float64Var(&o.rate, "rate", 0, "requests per second")
	f.DurationVar(&o.duration, "duration", 0, "how long to send requests")
	f.IntVar(&o.concurrency, "concurrency", 16, "most requests in flight at once")
	addParamsFlags(f, &o.params)
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API bearer token")
	addHedgeFlag(f, &o.hedge)
	f.BoolVar(&o.asJSON, "json", false, "print the report as one JSON object")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the image order (and of the peer choice with --spread random)")
	f.StringVar(&o.spread, "spread", "roundrobin", "how requests are spread over the peers: roundrobin or random")
	f.BoolVar(&o.healthz, "healthz", false, "send GET /healthz instead of classify requests (the HTTP floor)")
	return cmd
}

func runLoadgen(cmd *cobra.Command, o loadgenOpts) error {
	switch {
	case len(o.peers) == 0:
		return usagef("--peer URL is required")
	case o.images == "" && !o.healthz:
		return usagef("--images PATH is required")
	case !(o.rate > 0) || math.IsInf(o.rate, 0):
		return usagef("--rate must be > 0")
	case o.duration <= 0:
		return usagef("--duration must be > 0")
	case o.concurrency < 1:
		return usagef("--concurrency must be at least 1")
	case o.spread != "roundrobin" && o.spread != "random":
		return usagef("--spread %q: want roundrobin or random", o.spread)
	}
	if err := checkParams(o.params); err != nil {
		return err
	}
	total := load.ScheduledRequests(o.rate, o.duration)
	if total > load.MaxScheduled {
		return usagef("--rate x --duration is %d requests; at most %d per run", total, load.MaxScheduled)
	}
	counter := &load.ByteCounter{}
	hc := &http.Client{Transport: counter.Transport(o.concurrency), Timeout: o.params.Timeout()}
	defer hc.CloseIdleConnections()
	pool, err := newPool(o.peers, o.tokenFile, hc, o.hedge)
	if err != nil {
		return err
	}
	// Request i goes to peer i mod n, or to one drawn by --seed; a peer that
	// cannot be reached is failed over to the next.
	pick := rand.New(rand.NewPCG(o.seed, 0x9e3779b97f4a7c15))
	var pickMu sync.Mutex
	peerFor := func(i int) api.Entry {
		if o.spread != "random" {
			return pool.From(i)
		}
		pickMu.Lock()
		defer pickMu.Unlock()
		return pool.From(pick.IntN(pool.Len()))
	}
	errOut := cmd.ErrOrStderr()
	if o.healthz {
		fmt.Fprintf(errOut, "sending %d GET /healthz over %s to %d peers\n", total, o.duration, pool.Len())
		return finishLoadgen(cmd, o, counter, nil, func(ctx context.Context, i int) load.Outcome {
			return load.SendHealthz(ctx, peerFor(i))
		})
	}
	start := time.Now()
	w, err := load.LoadWorkload(o.images, total, o.seed, func(p string, err error) {
		fmt.Fprintf(errOut, "varpar: skipping %s: %v\n", p, err)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "loaded %s: %d images (%d distinct to send) in %.1fs; sending %d requests over %s to %d peers\n",
		o.images, w.Size, w.Distinct(), time.Since(start).Seconds(), total, o.duration, pool.Len())

	send := func(ctx context.Context, i int) load.Outcome {
		img, label := w.Request(i)
		return load.SendClassify(ctx, peerFor(i), img, label, o.params)
	}
	return finishLoadgen(cmd, o, counter, w.Classes, send)
}

// finishLoadgen sends the paced requests and prints the report.
func finishLoadgen(cmd *cobra.Command, o loadgenOpts, counter *load.ByteCounter, classes map[string]bool, send func(context.Context, int) load.Outcome) error {
	total := load.ScheduledRequests(o.rate, o.duration)
	// Ctrl-C (or SIGTERM) ends the run early: no new requests, those out
	// finish (within their timeout), and the report covers what was sent. A
	// second Ctrl-C stops at once.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	res := load.Pace(ctx, load.Schedule{Total: total, Rate: o.rate, Concurrency: o.concurrency, Drop: true, Drain: true}, send)
	sum := load.Summarize(res.Outcomes, res.Elapsed, classes)
	if sent := int64(sum.Sent); sent > 0 {
		sum.BytesSent = float64(counter.Sent()) / float64(sent)
		sum.BytesReceived = float64(counter.Received()) / float64(sent)
	}
	sum.Concurrency, sum.Healthz = o.concurrency, o.healthz
	if o.asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(sum)
	}
	return printLoadSummary(cmd.OutOrStdout(), sum)
}
