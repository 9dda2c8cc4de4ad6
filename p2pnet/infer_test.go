package p2pnet

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/p2pnet/pb"
)

func TestInferRoundTrip(t *testing.T) {
	client := newHost(t)
	servers := []*Host{newHost(t), newHost(t)}
	var calls [2]atomic.Int32
	for i, s := range servers {
		variant := []string{"v96", "v128"}[i]
		s.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
			calls[i].Add(1)
			if from != client.ID() {
				t.Errorf("handler saw caller %s, want %s", from, client.host.ID())
			}
			if _, ok := ctx.Deadline(); !ok {
				t.Error("handler context has no deadline")
			}
			if req.VariantId != variant {
				return &pb.InferAnswer{Error: pb.ErrorCode_UNKNOWN_VARIANT}
			}
			return topK(ctx, from, req)
		})
	}

	ctx := testCtx(t, 10*time.Second)
	for i, s := range servers {
		variant := []string{"v96", "v128"}[i]
		for j := 0; j < 3; j++ { // the second and later calls reuse the connection
			req := testRequest("r", variant)
			req.Input = &pb.InferRequest_EncodedImage{EncodedImage: []byte{byte(10 * (j + 1))}}
			ans, err := client.Infer(ctx, s.Remote(), req)
			if err != nil {
				t.Fatalf("Infer(%s) #%d: %v", variant, j, err)
			}
			want := []int32{int32(10 * (j + 1)), int32(10*(j+1) + 1), int32(10*(j+1) + 2)}
			if ans.Error != pb.ErrorCode_OK || ans.RequestId != "r" || ans.VariantId != variant ||
				!equalInt32(ans.Indices, want) || !bytes.Equal(ans.ModelSha256, testModelHash) {
				t.Fatalf("Infer(%s) #%d: got %v, want indices %v", variant, j, ans, want)
			}
			if ans.ComputeUs == 0 {
				t.Errorf("ComputeUs not filled in")
			}
			if req.DeadlineUnixMs != 0 {
				t.Errorf("Infer modified the caller's request (deadline %d)", req.DeadlineUnixMs)
			}
		}
		// A variant the server does not serve: an answer, not an error.
		ans, err := client.Infer(ctx, s.Remote(), testRequest("u", "nope"))
		if err != nil || ans.Error != pb.ErrorCode_UNKNOWN_VARIANT || ans.VariantId != "nope" {
			t.Fatalf("unknown variant: got %v, %v; want an UNKNOWN_VARIANT answer", ans, err)
		}
	}
	for i := range calls {
		if got := calls[i].Load(); got != 4 {
			t.Errorf("server %d handled %d calls, want 4", i, got)
		}
	}

	// A host that has no handler does not speak the protocol.
	bare := newHost(t)
	if _, err := client.Infer(ctx, bare.Remote(), testRequest("r", "v96")); err == nil {
		t.Error("Infer to a host without a handler: got nil error")
	}
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// blockingHandler blocks until its context ends and reports that on done.
// done is closed once, however many calls the handler serves.
func blockingHandler(started, done chan<- struct{}) InferHandler {
	var once sync.Once
	return func(ctx context.Context, _ PeerID, _ *pb.InferRequest) *pb.InferAnswer {
		started <- struct{}{}
		<-ctx.Done()
		once.Do(func() { close(done) })
		return &pb.InferAnswer{Error: pb.ErrorCode_DEADLINE}
	}
}

// bothPaths runs test against a server with sessions (what Infer uses by
// default) and one without (a stream per request).
func bothPaths(t *testing.T, test func(t *testing.T, mode func(*Config))) {
	t.Run("session", func(t *testing.T) { test(t, func(*Config) {}) })
	t.Run("stream", func(t *testing.T) { test(t, func(c *Config) { c.noSessions = true }) })
}

func TestInferDeadline(t *testing.T) { bothPaths(t, testInferDeadline) }

func testInferDeadline(t *testing.T, mode func(*Config)) {
	client, server := newHost(t), newHost(t, mode)
	started, done := make(chan struct{}, 1), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))
	// Connect first so the deadline measures the call, not the handshake.
	if err := client.host.Connect(testCtx(t, 5*time.Second), server.AddrInfo()); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.Infer(ctx, server.Remote(), testRequest("slow", "v"))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Infer to a slow handler: got %v, want context.DeadlineExceeded", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Infer returned after %v, deadline was 300ms", elapsed)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("the handler's context was not cancelled at the deadline")
	}

	// A deadline in the request alone bounds the call too.
	req := testRequest("slow2", "v")
	req.DeadlineUnixMs = time.Now().Add(300 * time.Millisecond).UnixMilli()
	started2, done2 := make(chan struct{}, 1), make(chan struct{})
	server.SetInferHandler(blockingHandler(started2, done2))
	start = time.Now()
	_, err = client.Infer(context.Background(), server.Remote(), req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("Infer with a request deadline: got %v after %v, want DeadlineExceeded in ~300ms", err, time.Since(start))
	}
	<-done2

	// A deadline beyond the server's MaxInferTime: the server gives up at
	// its limit and says so.
	capped := newHost(t, mode, func(c *Config) { c.MaxInferTime = 200 * time.Millisecond })
	started3, done3 := make(chan struct{}, 1), make(chan struct{})
	capped.SetInferHandler(blockingHandler(started3, done3))
	ans, err := client.Infer(testCtx(t, 10*time.Second), capped.Remote(), testRequest("long", "v"))
	if err != nil || ans.Error != pb.ErrorCode_DEADLINE {
		t.Fatalf("request over MaxInferTime: got %v, %v; want a DEADLINE answer", ans, err)
	}
	<-done3

	// A request whose deadline has already passed is answered DEADLINE at
	// once, without calling the handler.
	var called atomic.Bool
	server.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
		called.Store(true)
		return topK(ctx, from, req)
	})
	late := testRequest("late", "v")
	late.DeadlineUnixMs = time.Now().Add(-time.Second).UnixMilli()
	s, err := client.host.NewStream(testCtx(t, 5*time.Second), server.host.ID(), InferProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if err := writeMsg(s, late); err != nil {
		t.Fatal(err)
	}
	var lateAns pb.InferAnswer
	if err := readMsg(s, MaxAnswerBytes, &lateAns, nil); err != nil || lateAns.Error != pb.ErrorCode_DEADLINE {
		t.Fatalf("late request: got %v, %v; want a DEADLINE answer", &lateAns, err)
	}
	if called.Load() {
		t.Error("the handler ran for a request already past its deadline")
	}
}

// TestInferCancel: cancelling Infer stops the remote handler (by a cancel
// frame on a session, by resetting the stream otherwise).
func TestInferCancel(t *testing.T) { bothPaths(t, testInferCancel) }

func testInferCancel(t *testing.T, mode func(*Config)) {
	client, server := newHost(t), newHost(t, mode)
	started, done := make(chan struct{}, 1), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		// The request's deadline (StreamTimeout, 5 s) is far off: only the
		// cancellation can end the handler in time.
		_, err := client.Infer(ctx, server.Remote(), testRequest("c", "v"))
		errc <- err
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("handler never started")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Infer: got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Infer did not return after its context was cancelled")
	}
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the remote handler's context was not cancelled")
	}
}

func TestInferOversizeRefused(t *testing.T) {
	var calls atomic.Int32
	server := newHost(t, func(c *Config) { c.MaxInferBytes = 64 << 10 })
	server.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
		calls.Add(1)
		return topK(ctx, from, req)
	})
	// This client would send up to 1 MiB; the server takes 64 KiB.
	client := newHost(t, func(c *Config) { c.MaxInferBytes = 1 << 20 })
	ctx := testCtx(t, 10*time.Second)

	big := testRequest("big", "v")
	big.Input = &pb.InferRequest_EncodedImage{EncodedImage: make([]byte, 100<<10)}
	if ans, err := client.Infer(ctx, server.Remote(), big); err == nil {
		t.Fatalf("100 KiB request to a 64 KiB server: got answer %v, want an error", ans)
	}
	if calls.Load() != 0 {
		t.Fatal("the handler ran for an oversize request")
	}
	// The server still serves requests within its cap.
	small := testRequest("small", "v")
	if _, err := client.Infer(ctx, server.Remote(), small); err != nil {
		t.Fatalf("small request after an oversize one: %v", err)
	}

	// A request over the caller's own cap never leaves it.
	tiny := newHost(t, func(c *Config) { c.MaxInferBytes = 1 << 10 })
	big.Input = &pb.InferRequest_EncodedImage{EncodedImage: make([]byte, 2<<10)}
	if _, err := tiny.Infer(ctx, server.Remote(), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("request over the local cap: got %v, want ErrTooLarge", err)
	}
	// Neither does an invalid one.
	bad := testRequest("bad", "v")
	bad.K = 0
	if _, err := client.Infer(ctx, server.Remote(), bad); !errors.Is(err, ErrBadMessage) || !errors.Is(err, pb.ErrInvalid) {
		t.Fatalf("request with k=0: got %v, want ErrBadMessage wrapping pb.ErrInvalid", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}
}

func TestInferGarbageResetsStream(t *testing.T) {
	client, server := newHost(t), newHost(t)
	// The handler waits for its context to end, so that a request followed
	// by junk is still running when the junk arrives, which must cancel it.
	var calls atomic.Int32
	server.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
		calls.Add(1)
		<-ctx.Done()
		return topK(ctx, from, req)
	})
	valid, err := testRequestWithDeadline().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	junk := []struct {
		name string
		b    []byte
	}{
		{"random bytes", []byte("\x17\x42GET / HTTP/1.1\r\nHost: varpar\r\n\r\n")},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}},
		{"overlong varint", bytes.Repeat([]byte{0xff}, 11)},
		{"garbage body", append([]byte{8}, "\xff\xff\xff\xff\xff\xff\xff\xff"...)},
		{"valid encoding, invalid request", append([]byte{2}, 0x18, 0)}, // k = 0 and nothing else
		{"truncated request", append([]byte{byte(len(valid))}, valid[:len(valid)/2]...)},
		{"request then junk", append(append([]byte{byte(len(valid))}, valid...), "junk"...)},
	}
	ctx := testCtx(t, 20*time.Second)
	if err := client.host.Connect(ctx, server.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range junk {
		t.Run(tt.name, func(t *testing.T) {
			s, err := client.host.NewStream(ctx, server.host.ID(), InferProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			s.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := s.Write(tt.b); err != nil {
				t.Fatal(err)
			}
			if tt.name == "truncated request" {
				s.CloseWrite() // the server sees the stream end mid-message
			}
			var ans pb.InferAnswer
			err = readMsg(s, MaxAnswerBytes, &ans, nil)
			if err == nil {
				t.Fatalf("got answer %v to junk, want a reset stream", &ans)
			}
			if isTimeout(err) {
				t.Fatalf("server neither answered nor reset: %v", err)
			}
		})
	}
	if got := calls.Load(); got != 1 { // only "request then junk" reaches the handler
		t.Errorf("handler ran %d times for junk, want 1", got)
	}
	server.SetInferHandler(topK)
	if _, err := client.Infer(ctx, server.Remote(), testRequest("after", "v")); err != nil {
		t.Fatalf("Infer after junk: %v", err)
	}
}

func testRequestWithDeadline() *pb.InferRequest {
	r := testRequest("junk", "v")
	r.DeadlineUnixMs = time.Now().Add(time.Minute).UnixMilli()
	return r
}

func TestInferHandlerFaults(t *testing.T) {
	client, server := newHost(t), newHost(t)
	ctx := testCtx(t, 10*time.Second)
	handlers := []struct {
		name string
		fn   InferHandler
	}{
		{"panic", func(context.Context, PeerID, *pb.InferRequest) *pb.InferAnswer { panic("boom") }},
		{"nil answer", func(context.Context, PeerID, *pb.InferRequest) *pb.InferAnswer { return nil }},
		{"duplicate classes", func(context.Context, PeerID, *pb.InferRequest) *pb.InferAnswer {
			return &pb.InferAnswer{ModelSha256: testModelHash, Indices: []int32{1, 1}, Probs: []float32{.5, .5}}
		}},
		{"more than k", func(context.Context, PeerID, *pb.InferRequest) *pb.InferAnswer {
			return &pb.InferAnswer{ModelSha256: testModelHash, Indices: []int32{1, 2, 3, 4}, Probs: []float32{.1, .1, .1, .1}}
		}},
	}
	for _, tt := range handlers {
		t.Run(tt.name, func(t *testing.T) {
			server.SetInferHandler(tt.fn)
			ans, err := client.Infer(ctx, server.Remote(), testRequest("f", "v"))
			if err != nil {
				t.Fatalf("Infer: %v", err)
			}
			if ans.Error != pb.ErrorCode_INTERNAL || ans.RequestId != "f" {
				t.Fatalf("got %v, want an INTERNAL answer to request f", ans)
			}
		})
	}
	server.SetInferHandler(topK)
	if ans, err := client.Infer(ctx, server.Remote(), testRequest("ok", "v")); err != nil || ans.Error != pb.ErrorCode_OK {
		t.Fatalf("Infer after faults: got %v, %v", ans, err)
	}
}

func TestInferRejectsBadAnswers(t *testing.T) {
	// A server that is not a Host: it answers another request's ID.
	client, server := newHost(t), newHost(t)
	server.host.SetStreamHandler(InferProtocol, func(s network.Stream) {
		var req pb.InferRequest
		if err := readMsg(s, 1<<20, &req, nil); err != nil {
			s.Reset()
			return
		}
		ans := topK(context.Background(), "", &req)
		ans.RequestId, ans.VariantId = "someone-else", req.VariantId
		writeMsg(s, ans)
		s.Close()
	})
	_, err := client.Infer(testCtx(t, 10*time.Second), server.Remote(), testRequest("mine", "v"))
	if !errors.Is(err, ErrBadMessage) {
		t.Fatalf("answer to another request: got %v, want ErrBadMessage", err)
	}
}

// TestInferClockSkew: a caller whose clock is an hour off (a Raspberry Pi
// before NTP answers) still gets answers, because the server counts the
// request's timeout from its own receive time; it logs the skew once.
func TestInferClockSkew(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	client := newHost(t)
	server := newHost(t, func(c *Config) {
		c.Logger = zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
			logMu.Lock()
			defer logMu.Unlock()
			return logs.Write(p)
		}))).Level(zerolog.WarnLevel)
	})
	server.SetInferHandler(topK)
	ctx := testCtx(t, 20*time.Second)
	if err := client.host.Connect(ctx, server.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	ask := func(deadline time.Time, timeout uint32) *pb.InferAnswer {
		t.Helper()
		req := testRequest("skew", "v")
		req.DeadlineUnixMs, req.TimeoutMs = deadline.UnixMilli(), timeout
		s, err := client.host.NewStream(ctx, server.host.ID(), InferProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		ans, err := exchangeInfer(s, req)
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	behind := time.Now().Add(-time.Hour)
	// Without a timeout, the absolute deadline decides: already passed.
	if ans := ask(behind.Add(2*time.Second), 0); ans.Error != pb.ErrorCode_DEADLINE {
		t.Fatalf("an hour-old deadline without a timeout: got %v, want DEADLINE", ans)
	}
	// With one, the caller's clock does not matter, in either direction.
	for _, dl := range []time.Time{behind.Add(2 * time.Second), time.Now().Add(time.Hour)} {
		if ans := ask(dl, 2000); ans.Error != pb.ErrorCode_OK {
			t.Fatalf("deadline %v with a 2 s timeout: got %v, want an answer", dl, ans)
		}
	}
	logMu.Lock()
	n := strings.Count(logs.String(), "clock")
	logMu.Unlock()
	if n != 1 {
		t.Errorf("skew logged %d times, want once (rate-limited): %s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestSessionBadAnswer: on a session, an answer that is not valid fails its
// own call with ErrBadMessage (checked once, against its request) and the
// session goes on carrying the next call.
func TestSessionBadAnswer(t *testing.T) {
	client, server := newHost(t), newHost(t)
	var opened atomic.Int32
	server.host.SetStreamHandler(SessionProtocol, func(s network.Stream) {
		opened.Add(1)
		for {
			var f pb.SessionFrame
			if err := readMsg(s, 1<<20, &f, nil); err != nil {
				s.Reset()
				return
			}
			if f.Cancel {
				continue
			}
			ans := topK(context.Background(), "", f.Request)
			ans.RequestId, ans.VariantId = f.Request.RequestId, f.Request.VariantId
			if f.Request.RequestId == "bad" {
				ans.Probs[0] = 2 // not a probability
			}
			if err := writeMsg(s, &pb.SessionAnswer{Call: f.Call, Answer: ans}); err != nil {
				return
			}
		}
	})
	ctx := testCtx(t, 10*time.Second)
	if _, err := client.Infer(ctx, server.Remote(), testRequest("bad", "v")); !errors.Is(err, ErrBadMessage) || !errors.Is(err, pb.ErrInvalid) {
		t.Fatalf("invalid answer on a session: got %v, want ErrBadMessage wrapping pb.ErrInvalid", err)
	}
	if ans, err := client.Infer(ctx, server.Remote(), testRequest("good", "v")); err != nil || ans.Error != pb.ErrorCode_OK {
		t.Fatalf("next call on the session: got %v, %v", ans, err)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("%d sessions opened, want the one carrying both calls", n)
	}
}
