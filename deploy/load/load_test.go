package load

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/peer/api"
)

func TestPaceDrops(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	done := make(chan Run)
	go func() {
		done <- Pace(context.Background(), Schedule{Total: 10, Rate: 1000, Concurrency: 2, Drop: true}, func(ctx context.Context, i int) Outcome {
			calls.Add(1)
			<-release
			return Outcome{}
		})
	}()
	time.Sleep(50 * time.Millisecond) // all 10 are due within 10 ms
	close(release)
	r := <-done
	dropped := 0
	for _, o := range r.Outcomes {
		if o.Dropped {
			dropped++
		}
	}
	if len(r.Outcomes) != 10 || calls.Load() != 2 || dropped != 8 {
		t.Errorf("%d outcomes, %d calls, %d dropped; want 10, 2 and 8", len(r.Outcomes), calls.Load(), dropped)
	}
}

func TestPaceRateAndCancel(t *testing.T) {
	nop := func(ctx context.Context, i int) Outcome { return Outcome{} }
	r := Pace(context.Background(), Schedule{Total: 10, Rate: 200, Concurrency: 4, Drop: true}, nop)
	// Request 9 is due at 45 ms.
	if len(r.Outcomes) != 10 || r.Elapsed < 44*time.Millisecond || r.Elapsed > 2*time.Second {
		t.Errorf("10 at 200/s: %d outcomes in %s", len(r.Outcomes), r.Elapsed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	r = Pace(ctx, Schedule{Total: 1000, Rate: 50, Concurrency: 4}, nop)
	if len(r.Outcomes) < 2 || len(r.Outcomes) > 5 {
		t.Errorf("cancelled after 60ms at 50/s: %d outcomes, want about 4", len(r.Outcomes))
	}
	// Rate 0: as fast as the slots allow, waiting rather than dropping.
	r = Pace(context.Background(), Schedule{Total: 50, Concurrency: 3, Drop: true}, func(ctx context.Context, i int) Outcome { return Outcome{Answered: i} })
	for i, o := range r.Outcomes {
		if o.Dropped || o.Answered != i {
			t.Fatalf("rate 0: outcome %d is %+v", i, o)
		}
	}
}

// TestPaceDrain: stopping a draining run starts no new request, and the
// calls already out are not cancelled; without Drain they are.
func TestPaceDrain(t *testing.T) {
	for _, drain := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{}, 2)
		call := func(cctx context.Context, i int) Outcome {
			started <- struct{}{}
			select {
			case <-cctx.Done():
				return Outcome{ErrKind: "cancelled"}
			case <-time.After(100 * time.Millisecond):
				return Outcome{Answered: 1}
			}
		}
		done := make(chan Run)
		go func() {
			done <- Pace(ctx, Schedule{Total: 1000, Rate: 1000, Concurrency: 2, Drop: true, Drain: drain}, call)
		}()
		<-started
		<-started
		cancel()
		r := <-done
		var answered, cancelled int
		for _, o := range r.Outcomes {
			switch {
			case o.Answered == 1:
				answered++
			case o.ErrKind == "cancelled":
				cancelled++
			}
		}
		if drain && (answered != 2 || cancelled != 0) {
			t.Errorf("drain: %d answered, %d cancelled of %d outcomes; want the 2 out answered", answered, cancelled, len(r.Outcomes))
		}
		if !drain && (answered != 0 || cancelled != 2) {
			t.Errorf("no drain: %d answered, %d cancelled; want the 2 out cancelled", answered, cancelled)
		}
	}
}

func TestScheduledRequests(t *testing.T) {
	for _, tt := range []struct {
		rate float64
		d    time.Duration
		want int
	}{{10, time.Second, 10}, {0.1, time.Second, 1}, {150, 1500 * time.Millisecond, 225}, {1e9, time.Hour, MaxScheduled + 1}} {
		if got := ScheduledRequests(tt.rate, tt.d); got != tt.want {
			t.Errorf("%g/s for %s: %d, want %d", tt.rate, tt.d, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var outs []Outcome
	for i := 1; i <= 100; i++ {
		outs = append(outs, Outcome{Latency: ms(i), Class: "cat", Label: map[bool]string{true: "cat", false: "dog"}[i <= 90], Answered: 2, Status: 200,
			InPeerMS: float64(i) / 2, Timings: map[string]api.VariantTiming{"w1": {ArrivedMS: float64(i), ComputeMS: 1}}})
	}
	outs = append(outs, Outcome{Dropped: true}, Outcome{ErrKind: "HTTP 503", Latency: ms(999)}, Outcome{ErrKind: "timeout"})
	s := Summarize(outs, 2*time.Second, map[string]bool{"cat": true, "dog": true})
	want := LatencyStats{P50: 50, P90: 90, P99: 99, Max: 100}
	if s.Scheduled != 103 || s.Sent != 102 || s.Dropped != 1 || s.Successes != 100 || s.Latency != want ||
		s.Errors["HTTP 503"] != 1 || s.Errors["timeout"] != 1 || s.Throughput != 50 || s.MeanAnswering != 2 {
		t.Errorf("got %+v", s)
	}
	if v := s.Variants["w1"]; v.Answers != 100 || v.Arrived != want || v.Compute.P50 != 1 || s.InPeer.P50 != 25 {
		t.Errorf("where the time went: in peer %+v, variants %+v", s.InPeer, s.Variants)
	}
	if s.Accuracy == nil || *s.Accuracy != 0.9 {
		t.Errorf("accuracy %v, want 0.9", s.Accuracy)
	}
	// Answers in other class names than the data set's: no accuracy.
	if s := Summarize(outs, time.Second, map[string]bool{"0": true}); s.Accuracy != nil {
		t.Errorf("disjoint classes: accuracy %v, want none", *s.Accuracy)
	}
	if s := Summarize(nil, 0, nil); s.Latency != (LatencyStats{}) || s.Accuracy != nil {
		t.Errorf("nothing: got %+v", s)
	}
}

func TestErrorKind(t *testing.T) {
	c, err := api.NewClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	o := SendClassify(context.Background(), c, []byte("x"), "", api.Params{})
	if o.ErrKind != "connection refused" {
		t.Errorf("port 1: kind %q (%s), want connection refused", o.ErrKind, o.ErrMsg)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server notices the client going away
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	c, _ = api.NewClient(slow.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if o := SendClassify(ctx, c, []byte("x"), "", api.Params{}); o.ErrKind != "timeout" {
		t.Errorf("slow peer: kind %q (%s), want timeout", o.ErrKind, o.ErrMsg)
	}
	c.CloseIdleConnections()
}

// TestByteCounter: the counts are what went over the connection, headers
// included, and a healthz outcome records the status.
func TestByteCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	defer srv.Close()
	var bc ByteCounter
	hc := &http.Client{Transport: bc.Transport(2)}
	defer hc.CloseIdleConnections()
	c, err := api.NewClient(srv.URL, api.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	o := SendHealthz(context.Background(), c)
	if o.ErrKind != "" || o.Status != 200 {
		t.Fatalf("healthz: %+v", o)
	}
	// A GET line with a Host header, and a status line with the 3-byte body.
	if bc.Sent() < int64(len("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")) || bc.Received() < int64(len("HTTP/1.1 200 OK\r\n\r\nok\n")) {
		t.Errorf("sent %d, received %d bytes", bc.Sent(), bc.Received())
	}
}

func TestShuffledOrder(t *testing.T) {
	a, b, c := ShuffledOrder(100, 7), ShuffledOrder(100, 7), ShuffledOrder(100, 8)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("the order is not a function of the seed alone")
	}
	if s := slices.Sorted(slices.Values(a)); s[0] != 0 || s[99] != 99 || len(slices.Compact(s)) != 100 {
		t.Error("not a permutation")
	}
}

// TestEncodePNG: what the peer decodes is the sample's pixels.
func TestEncodePNG(t *testing.T) {
	gray := data.Sample{W: 3, H: 2, Pix: []uint8{1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 255, 255, 255}}
	rgb := data.Sample{W: 2, H: 1, Pix: []uint8{10, 20, 30, 40, 50, 60}}
	for _, s := range []data.Sample{gray, rgb} {
		b, err := EncodePNG(s)
		if err != nil {
			t.Fatal(err)
		}
		img, err := nn.DecodeImage(bytes.NewReader(b), 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint8
		for y := range s.H {
			for x := range s.W {
				r, g, b, _ := img.At(x, y).RGBA()
				got = append(got, uint8(r>>8), uint8(g>>8), uint8(b>>8))
			}
		}
		if !slices.Equal(got, s.Pix) {
			t.Errorf("%dx%d: decoded %v, want %v", s.W, s.H, got, s.Pix)
		}
	}
	if _, err := EncodePNG(data.Sample{W: 2, H: 2, Pix: make([]uint8, 3)}); err == nil {
		t.Error("short pixels: no error")
	}
}
