package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/peer"
)

// maxScheduled bounds the requests one run may schedule (rate x duration),
// so that the per-request records stay small in memory.
const maxScheduled = 1_000_000

type loadgenOpts struct {
	peers       []string
	images      string
	rate        float64
	duration    time.Duration
	concurrency int
	params      classifyParams
	tokenFile   string
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
	o.params.addFlags(f)
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the API bearer token")
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
	if err := o.params.check(); err != nil {
		return err
	}
	total := scheduledRequests(o.rate, o.duration)
	if total > maxScheduled {
		return usagef("--rate x --duration is %d requests; at most %d per run", total, maxScheduled)
	}
	counter := &byteCounter{}
	hc := &http.Client{Transport: counter.transport(o.concurrency), Timeout: o.params.clientTimeout()}
	defer hc.CloseIdleConnections()
	var clients []*apiClient
	for _, u := range o.peers {
		c, err := newAPIClient(u, o.tokenFile, hc)
		if err != nil {
			return err
		}
		clients = append(clients, c)
	}
	// Request i goes to peer i mod n, or to one drawn by --seed.
	pick := rand.New(rand.NewPCG(o.seed, 0x9e3779b97f4a7c15))
	var pickMu sync.Mutex
	peerFor := func(i int) *apiClient {
		if o.spread != "random" {
			return clients[i%len(clients)]
		}
		pickMu.Lock()
		defer pickMu.Unlock()
		return clients[pick.IntN(len(clients))]
	}
	errOut := cmd.ErrOrStderr()
	if o.healthz {
		fmt.Fprintf(errOut, "sending %d GET /healthz over %s to %d peers\n", total, o.duration, len(clients))
		return finishLoadgen(cmd, o, counter, nil, func(ctx context.Context, i int) outcome {
			return sendHealthz(ctx, peerFor(i))
		})
	}
	start := time.Now()
	w, err := loadWorkload(o.images, total, o.seed, func(p string, err error) {
		fmt.Fprintf(errOut, "varpar: skipping %s: %v\n", p, err)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "loaded %s: %d images (%d distinct to send) in %.1fs; sending %d requests over %s to %d peers\n",
		o.images, w.size, len(w.encoded), time.Since(start).Seconds(), total, o.duration, len(clients))

	send := func(ctx context.Context, i int) outcome {
		img, label := w.request(i)
		return sendClassify(ctx, peerFor(i), img, label, o.params)
	}
	return finishLoadgen(cmd, o, counter, w.classes, send)
}

// finishLoadgen sends the paced requests and prints the report.
func finishLoadgen(cmd *cobra.Command, o loadgenOpts, counter *byteCounter, classes map[string]bool, send func(context.Context, int) outcome) error {
	total := scheduledRequests(o.rate, o.duration)
	// Ctrl-C ends the run early; the report covers what was sent.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := runPaced(ctx, total, o.rate, o.concurrency, true, send)
	sum := summarize(res.outcomes, res.elapsed, classes)
	sent := int64(sum.Sent)
	if sent > 0 {
		sum.BytesSent = float64(counter.sent.Load()) / float64(sent)
		sum.BytesReceived = float64(counter.received.Load()) / float64(sent)
	}
	sum.Concurrency, sum.Healthz = o.concurrency, o.healthz
	if o.asJSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(sum)
	}
	return sum.print(cmd.OutOrStdout())
}

// scheduledRequests is how many requests rate x duration makes (at least 1).
func scheduledRequests(rate float64, d time.Duration) int {
	n := math.Floor(rate * d.Seconds())
	if n > maxScheduled {
		return maxScheduled + 1
	}
	return max(1, int(n))
}

// workload is the images a run sends, pre-encoded as PNG, in a fixed order.
type workload struct {
	size      int             // images in the data set
	order     []int           // sample index of request i (mod len)
	encoded   map[int][]byte  // PNG by sample index, for the samples used
	labels    map[int]string  // class name by sample index
	classes   map[string]bool // the data set's class names
	classList []string        // the same, in label order
}

// loadWorkload loads the data set at path and encodes the images that need
// requests will use, in an order shuffled by seed.
func loadWorkload(path string, need int, seed uint64, warn func(string, error)) (*workload, error) {
	d, err := data.LoadDataset(path, data.LoadOptions{OnBadImage: data.SkipBadImage, Warn: warn})
	if err != nil {
		return nil, err
	}
	if len(d.Samples) == 0 {
		return nil, fmt.Errorf("%s: no images", path)
	}
	w := &workload{size: len(d.Samples), encoded: map[int][]byte{}, labels: map[int]string{}, classes: map[string]bool{},
		classList: d.Classes}
	for _, c := range d.Classes {
		w.classes[c] = true
	}
	w.order = shuffledOrder(len(d.Samples), seed)
	for i := 0; i < min(need, len(w.order)); i++ {
		s := d.Samples[w.order[i]]
		b, err := encodeSamplePNG(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Path, err)
		}
		w.encoded[w.order[i]] = b
		if s.Label >= 0 && s.Label < len(d.Classes) {
			w.labels[w.order[i]] = d.Classes[s.Label]
		}
	}
	return w, nil
}

// request returns the image and label of request i.
func (w *workload) request(i int) ([]byte, string) {
	s := w.order[i%len(w.order)]
	return w.encoded[s], w.labels[s]
}

// shuffledOrder is a permutation of 0..n-1 that depends only on seed.
func shuffledOrder(n int, seed uint64) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	r := rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))
	r.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
	return order
}

// encodeSamplePNG encodes a sample as PNG: gray when its three channels are
// equal (MNIST), which the peer turns back into the same RGB pixels.
func encodeSamplePNG(s data.Sample) ([]byte, error) {
	if s.W <= 0 || s.H <= 0 || len(s.Pix) != s.W*s.H*3 {
		return nil, fmt.Errorf("sample is %dx%d with %d bytes of RGB", s.W, s.H, len(s.Pix))
	}
	gray := true
	for p := 0; p < len(s.Pix) && gray; p += 3 {
		gray = s.Pix[p] == s.Pix[p+1] && s.Pix[p] == s.Pix[p+2]
	}
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, s.W, s.H))
		for p := range g.Pix {
			g.Pix[p] = s.Pix[3*p]
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, s.W, s.H))
		for p := 0; p < s.W*s.H; p++ {
			copy(c.Pix[4*p:4*p+3], s.Pix[3*p:3*p+3])
			c.Pix[4*p+3] = 255
		}
		img = c
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// outcome is what became of one scheduled request.
type outcome struct {
	dropped  bool // never sent: too many requests in flight
	start    time.Time
	latency  time.Duration
	status   int    // HTTP status; 0 when no answer came
	errKind  string // "" for a success
	errMsg   string
	class    string                        // the answer's class (successes)
	label    string                        // the image's class name, "" if unknown
	answered int                           // variants that answered (successes)
	inPeer   float64                       // ms the initiating peer took (its latency_ms)
	timings  map[string]peer.VariantTiming // per answering variant
}

// sendClassify sends one request and records its outcome.
func sendClassify(ctx context.Context, c *apiClient, img []byte, label string, p classifyParams) outcome {
	o := outcome{start: time.Now(), label: label}
	resp, err := c.classify(ctx, img, p)
	o.latency = time.Since(o.start)
	switch {
	case err != nil:
		o.errKind, o.errMsg = transportErrorKind(err), err.Error()
	case resp.Status != http.StatusOK:
		o.status = resp.Status
		o.errKind, o.errMsg = fmt.Sprintf("HTTP %d", resp.Status), resp.err().Error()
	default:
		o.status = resp.Status
		o.class, o.answered = resp.Result.Class, len(resp.Result.Answered)
		o.inPeer, o.timings = resp.Result.LatencyMS, resp.Result.Timings
	}
	return o
}

// sendHealthz sends one GET /healthz and records its outcome.
func sendHealthz(ctx context.Context, c *apiClient) outcome {
	o := outcome{start: time.Now()}
	status, body, err := c.get(ctx, "/healthz")
	o.latency = time.Since(o.start)
	switch {
	case err != nil:
		o.errKind, o.errMsg = transportErrorKind(err), err.Error()
	case status != http.StatusOK:
		o.status = status
		o.errKind, o.errMsg = fmt.Sprintf("HTTP %d", status), strings.TrimSpace(string(body))
	default:
		o.status = status
	}
	return o
}

// transportErrorKind names the kind of a failure to get an HTTP answer.
func transportErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	}
	return "transport"
}

// pacedRun is what runPaced did.
type pacedRun struct {
	outcomes []outcome // one per scheduled request, in schedule order
	elapsed  time.Duration
}

// runPaced calls do for requests 0..total-1, request i due at i/rate seconds
// after the start (rate <= 0: as fast as the concurrency allows), with at most
// concurrency calls at once. A request due while concurrency calls are out is
// dropped when drop is set, and otherwise waits for a free slot. Cancelling
// ctx stops the schedule (the requests not started are left out of the
// result) and is passed to the calls. It returns after every call returned.
func runPaced(ctx context.Context, total int, rate float64, concurrency int, drop bool,
	do func(ctx context.Context, i int) outcome) pacedRun {
	out := make([]outcome, total)
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	scheduled := 0
schedule:
	for i := 0; i < total; i++ {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					break schedule
				case <-timer.C:
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		if drop && rate > 0 {
			select {
			case slots <- struct{}{}:
			default:
				out[i] = outcome{dropped: true, start: time.Now()}
				scheduled++
				continue
			}
		} else {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				break schedule
			}
		}
		scheduled++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			out[i] = do(ctx, i)
		}()
	}
	wg.Wait()
	return pacedRun{outcomes: out[:scheduled], elapsed: time.Since(start)}
}

// loadSummary is loadgen's report.
type loadSummary struct {
	Scheduled     int               `json:"requests"`
	Sent          int               `json:"sent"`
	Dropped       int               `json:"dropped"`
	Concurrency   int               `json:"concurrency,omitempty"`
	Healthz       bool              `json:"healthz,omitempty"` // GET /healthz was sent, not classify
	Successes     int               `json:"successes"`
	Errors        map[string]int    `json:"errors"`
	ErrorSamples  map[string]string `json:"error_samples,omitempty"` // the first message of each kind
	ElapsedS      float64           `json:"elapsed_s"`
	Throughput    float64           `json:"throughput_rps"` // successes per second
	Latency       latencyStats      `json:"latency_ms"`
	Accuracy      *float64          `json:"accuracy,omitempty"` // when the answers use the data set's class names
	Correct       int               `json:"correct"`
	Labelled      int               `json:"-"` // successes whose image has a label
	MeanAnswering float64           `json:"mean_variants_answering"`
	// Where the time went, from the answers: the initiating peer's own
	// latency, and per variant how often it answered, when its answer
	// arrived at the initiator and the compute time it reported.
	InPeer        latencyStats            `json:"in_peer_latency_ms"`
	Variants      map[string]variantStats `json:"variants,omitempty"`
	BytesSent     float64                 `json:"bytes_sent_per_request"`
	BytesReceived float64                 `json:"bytes_received_per_request"`
}

// variantStats are one variant's answers in a run.
type variantStats struct {
	Answers int          `json:"answers"`
	Arrived latencyStats `json:"arrived_ms"`
	Compute latencyStats `json:"compute_ms"`
}

// latencyStats are percentiles of the successful requests' latency, in ms.
type latencyStats struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summarize reports on outcomes; classes are the data set's class names
// (accuracy is reported only if some answer is one of them).
func summarize(outs []outcome, elapsed time.Duration, classes map[string]bool) loadSummary {
	s := loadSummary{Scheduled: len(outs), Errors: map[string]int{}, ErrorSamples: map[string]string{}, ElapsedS: elapsed.Seconds()}
	var lat, inPeer []time.Duration
	arrived, compute := map[string][]time.Duration{}, map[string][]time.Duration{}
	answering, known := 0, false
	for _, o := range outs {
		switch {
		case o.dropped:
			s.Dropped++
			continue
		case o.errKind != "":
			s.Sent++
			if s.Errors[o.errKind] == 0 {
				s.ErrorSamples[o.errKind] = o.errMsg
			}
			s.Errors[o.errKind]++
			continue
		}
		s.Sent++
		s.Successes++
		lat = append(lat, o.latency)
		answering += o.answered
		inPeer = append(inPeer, fromMS(o.inPeer))
		for v, t := range o.timings {
			arrived[v] = append(arrived[v], fromMS(t.ArrivedMS))
			compute[v] = append(compute[v], fromMS(t.ComputeMS))
		}
		if classes[o.class] {
			known = true
		}
		if o.label != "" {
			s.Labelled++
			if o.class == o.label {
				s.Correct++
			}
		}
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Successes) / elapsed.Seconds()
	}
	s.Latency = percentiles(lat)
	s.InPeer = percentiles(inPeer)
	for v := range arrived {
		if s.Variants == nil {
			s.Variants = map[string]variantStats{}
		}
		s.Variants[v] = variantStats{Answers: len(arrived[v]), Arrived: percentiles(arrived[v]), Compute: percentiles(compute[v])}
	}
	if s.Successes > 0 {
		s.MeanAnswering = float64(answering) / float64(s.Successes)
	}
	if known && s.Labelled > 0 {
		acc := float64(s.Correct) / float64(s.Labelled)
		s.Accuracy = &acc
	}
	return s
}

func fromMS(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// percentiles uses the nearest rank: the smallest latency that at least q of
// the requests did not exceed.
func percentiles(lat []time.Duration) latencyStats {
	if len(lat) == 0 {
		return latencyStats{}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(sorted)))) - 1
		return ms(sorted[min(max(i, 0), len(sorted)-1)])
	}
	return latencyStats{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(sorted[len(sorted)-1])}
}

func (s loadSummary) print(w io.Writer) error {
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

// byteCounter counts the bytes of every connection its transport opens:
// what HTTP puts on the wire, headers included.
type byteCounter struct {
	sent, received atomic.Int64
}

func (bc *byteCounter) transport(conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, bc: bc}, nil
		},
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
}

type countingConn struct {
	net.Conn
	bc *byteCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.bc.received.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.bc.sent.Add(int64(n))
	return n, err
}
