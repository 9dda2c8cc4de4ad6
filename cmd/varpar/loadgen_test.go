package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
)

// writeImageFolder writes an image-folder data set: classes "0" (dark) and
// "1" (light), n images each, 8x8 gray PNGs all different.
func writeImageFolder(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	for c := range 2 {
		os.Mkdir(filepath.Join(dir, fmt.Sprint(c)), 0o755)
		for i := range n {
			img := image.NewGray(image.Rect(0, 0, 8, 8))
			for p := range img.Pix {
				img.Pix[p] = uint8(c*200 + i)
			}
			img.Pix[0] = uint8(i) // all images differ
			var buf bytes.Buffer
			png.Encode(&buf, img)
			writeFile(tb, filepath.Join(dir, fmt.Sprint(c), fmt.Sprintf("%03d.png", i)), buf.String())
		}
	}
	return dir
}

// labelPeer classifies the images writeImageFolder makes (by their second
// pixel), answering 503 to every fifth request, and records what it got.
type labelPeer struct {
	mu       sync.Mutex
	requests int
	images   []string // sha256 of each body, in arrival order
}

// seen returns the requests and the images' hashes received so far.
func (l *labelPeer) seen() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.requests, slices.Clone(l.images)
}

func (l *labelPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		io.WriteString(w, "ok\n")
		return
	}
	body, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.requests++
	n := l.requests
	l.images = append(l.images, fmt.Sprintf("%x", sha256.Sum256(body)))
	l.mu.Unlock()
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		httpJSON(w, http.StatusBadRequest, api.ErrorBody{Error: err.Error()})
		return
	}
	class := "0"
	if g := color.GrayModel.Convert(img.At(1, 0)).(color.Gray); g.Y >= 128 {
		class = "1"
	}
	res := api.Result{Class: class, Answered: []string{"a", "b", "c"}, QuorumMet: true, LatencyMS: 0.5,
		Timings: map[string]api.VariantTiming{"a": {ArrivedMS: 0.25, ComputeMS: 0.125}, "b": {ArrivedMS: 0.4, ComputeMS: 0.2}}}
	if n%5 == 0 {
		httpJSON(w, http.StatusServiceUnavailable, api.ClassifyAnswer{Error: "peer: quorum not reached", Result: &res})
		return
	}
	httpJSON(w, http.StatusOK, res)
}

func TestLoadgenCommand(t *testing.T) {
	images := writeImageFolder(t, 5)
	a, b := &labelPeer{}, &labelPeer{}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	start := time.Now()
	out, errOut, code := run(t, "loadgen", "--peer", sa.URL+","+sb.URL, "--images", images, "--rate", "100",
		"--duration", "400ms", "--concurrency", "4", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s load.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if s.Scheduled != 40 || s.Sent+s.Dropped != 40 || s.Successes+s.Errors["HTTP 503"] != s.Sent || len(s.Errors) > 1 {
		t.Errorf("got %+v; want 40 requests, sent or dropped, each a success or a 503", s)
	}
	if s.Errors["HTTP 503"] < 6 || s.Accuracy == nil || *s.Accuracy != 1 || s.MeanAnswering != 3 {
		t.Errorf("got %+v; want at least 6 of the 8 503s (a request may be dropped), accuracy 1, 3 variants answering", s)
	}
	if s.ErrorSamples["HTTP 503"] != "peer answered 503 Service Unavailable: peer: quorum not reached" {
		t.Errorf("first 503's message: %q", s.ErrorSamples["HTTP 503"])
	}
	va, vb := s.Variants["a"], s.Variants["b"]
	if len(s.Variants) != 2 || va.Answers != s.Successes || va.Arrived.P50 != 0.25 || va.Compute.P50 != 0.125 ||
		vb.Arrived.Max != 0.4 || vb.Compute.P99 != 0.2 || s.InPeer.P50 != 0.5 {
		t.Errorf("timings: in peer %+v, variants %+v", s.InPeer, s.Variants)
	}
	na, _ := a.seen()
	nb, _ := b.seen()
	if na != nb || na+nb != s.Sent {
		t.Errorf("round-robin: the peers got %d and %d requests of %d", na, nb, s.Sent)
	}
	if !(s.Latency.P50 > 0 && s.Latency.P50 <= s.Latency.P90 && s.Latency.P90 <= s.Latency.P99 && s.Latency.P99 <= s.Latency.Max) {
		t.Errorf("latency %+v: want 0 < p50 <= p90 <= p99 <= max", s.Latency)
	}
	// An 8x8 PNG is about 90 bytes, the request line and headers about 200.
	if s.BytesSent < 150 || s.BytesSent > 1000 || s.BytesReceived < 150 || s.BytesReceived > 1000 {
		t.Errorf("bytes per request: %.0f sent, %.0f received", s.BytesSent, s.BytesReceived)
	}
	if s.ElapsedS < 0.39 || time.Since(start) > 20*time.Second {
		t.Errorf("40 requests at 100/s took %.2fs", s.ElapsedS)
	}

	// Text output.
	out, errOut, code = run(t, "loadgen", "--peer", sa.URL, "--images", images, "--rate", "50", "--duration", "100ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"requests    5 scheduled, 5 sent, 0 dropped", "HTTP 503 (first: peer answered 503",
		"accuracy    100.00%", "variants    3.00 answering", "in peer     p50 0.50ms",
		"a          answered     4: arrived p50 0.25ms", "bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// --healthz: GET /healthz, no images.
	out, errOut, code = run(t, "loadgen", "--peer", sa.URL, "--healthz", "--rate", "50", "--duration", "100ms", "--json")
	if code != 0 {
		t.Fatalf("--healthz: exit %d: %s", code, errOut)
	}
	s = load.Summary{}
	if err := json.Unmarshal([]byte(out), &s); err != nil || !s.Healthz || s.Successes != 5 || s.Latency.P50 <= 0 || len(s.Variants) != 0 {
		t.Errorf("--healthz: got %+v (%v)", s, err)
	}
}

// TestLoadgenOrder: one seed, one order; another seed, another; and the
// command sends the images of its seed's order.
func TestLoadgenOrder(t *testing.T) {
	images := writeImageFolder(t, 10)
	sequence := func(seed uint64) []string {
		w, err := load.LoadWorkload(images, 15, seed, func(string, error) {})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := range 15 {
			img, label := w.Request(i)
			if label != "0" && label != "1" {
				t.Fatalf("request %d: label %q", i, label)
			}
			out = append(out, fmt.Sprintf("%x", sha256.Sum256(img)))
		}
		return out
	}
	a, b, c := sequence(7), sequence(7), sequence(8)
	if !slices.Equal(a, b) {
		t.Errorf("seed 7 twice: different orders")
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 give the same order")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a)))) != 15 {
		t.Errorf("15 requests over 20 images repeated an image")
	}
	if w, _ := load.LoadWorkload(images, 50, 7, func(string, error) {}); w.Distinct() != 20 {
		t.Errorf("50 requests over 20 images: %d encoded, want each once", w.Distinct())
	}

	l := &labelPeer{}
	srv := httptest.NewServer(l)
	defer srv.Close()
	// 50 ms apart, so that none is dropped.
	_, errOut, code := run(t, "loadgen", "--peer", srv.URL, "--images", images, "--rate", "20", "--duration", "750ms",
		"--concurrency", "4", "--seed", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Arrival order is up to the scheduler; the images are the seed's.
	_, got := l.seen()
	if got := slices.Sorted(slices.Values(got)); !slices.Equal(got, slices.Sorted(slices.Values(a))) {
		t.Errorf("the peer got other images than seed 7's first 15")
	}
}

// TestLoadgenFailsOver: with one of two peers stopped, every request is
// answered by the other: none fails with "connection refused".
func TestLoadgenFailsOver(t *testing.T) {
	images := writeImageFolder(t, 5)
	live := &labelPeer{}
	srv := httptest.NewServer(live)
	defer srv.Close()
	for _, spread := range []string{"roundrobin", "random"} {
		out, errOut, code := run(t, "loadgen", "--peer", stoppedPeerURL(t)+","+srv.URL, "--images", images, "--rate", "100",
			"--duration", "200ms", "--concurrency", "4", "--spread", spread, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var s load.Summary
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%v in %q", err, out)
		}
		if s.Sent == 0 || s.Successes+s.Errors["HTTP 503"] != s.Sent || len(s.Errors) > 1 {
			t.Errorf("--spread %s, one peer stopped: %+v; want every request answered by the live peer (errors %v)", spread, s, s.Errors)
		}
	}
}
