package p2pnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varpar/varpar/p2pnet/pb"
)

// sessionCount is how many infer sessions h has open.
func sessionCount(h *Host) int {
	h.smu.Lock()
	defer h.smu.Unlock()
	return len(h.sessions)
}

// TestSessionManyCalls: concurrent calls to one peer share one session and
// each gets its own answer.
func TestSessionManyCalls(t *testing.T) {
	client, server := newHost(t), newHost(t)
	var calls atomic.Int32
	server.SetInferHandler(func(ctx context.Context, from PeerID, req *pb.InferRequest) *pb.InferAnswer {
		calls.Add(1)
		return topK(ctx, from, req)
	})
	ctx := testCtx(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				b := byte(g*20 + i)
				req := testRequest(fmt.Sprintf("r%d-%d", g, i), "v")
				req.Input = &pb.InferRequest_EncodedImage{EncodedImage: []byte{b}}
				ans, err := client.Infer(ctx, server.Remote(), req)
				if err != nil {
					errs <- err
					return
				}
				if ans.RequestId != req.RequestId || len(ans.Indices) == 0 || ans.Indices[0] != int32(b) {
					errs <- fmt.Errorf("request %s (image %d) got %v", req.RequestId, b, ans)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := calls.Load(); n != 400 {
		t.Errorf("handler ran %d times, want 400", n)
	}
	if n := sessionCount(client); n != 1 {
		t.Errorf("%d sessions open, want 1", n)
	}
}

// TestSessionFallback: a peer that does not speak the session protocol is
// asked on a stream per request, and remembered as such.
func TestSessionFallback(t *testing.T) {
	client := newHost(t)
	old := newHost(t, func(c *Config) { c.noSessions = true })
	old.SetInferHandler(topK)
	ctx := testCtx(t, 10*time.Second)
	for i := range 3 {
		if _, err := client.Infer(ctx, old.Remote(), testRequest("r", "v")); err != nil {
			t.Fatalf("call %d to a peer without sessions: %v", i, err)
		}
	}
	client.smu.Lock()
	_, refused := client.noSession[old.host.ID()]
	client.smu.Unlock()
	if !refused || sessionCount(client) != 0 {
		t.Errorf("refused %v, sessions %d: want the peer remembered as sessionless", refused, sessionCount(client))
	}
}

// TestSessionServerGone: calls waiting on a session end as soon as the peer
// goes away, not at their deadline; a later call opens a new session.
func TestSessionServerGone(t *testing.T) {
	client := newHost(t)
	cfg := testConfig(t)
	server, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	started, done := make(chan struct{}, 4), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))
	ctx := testCtx(t, 20*time.Second)
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := client.Infer(ctx, server.Remote(), testRequest("w", "v"))
			errc <- err
		}()
	}
	<-started
	<-started
	start := time.Now()
	server.Close()
	for range 2 {
		if err := <-errc; err == nil {
			t.Error("a call to a closed peer succeeded")
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("calls ended %v after the peer closed", took)
	}
	again := newHost(t)
	again.SetInferHandler(topK)
	if _, err := client.Infer(ctx, again.Remote(), testRequest("r", "v")); err != nil {
		t.Fatalf("call to a new peer: %v", err)
	}
}

// TestSessionIdleClose: the server closes a quiet session; the next call
// opens a new one and succeeds.
func TestSessionIdleClose(t *testing.T) {
	defer func(d time.Duration) { sessionIdle = d }(sessionIdle)
	sessionIdle = 100 * time.Millisecond
	client, server := newHost(t), newHost(t)
	server.SetInferHandler(topK)
	ctx := testCtx(t, 10*time.Second)
	for i := range 3 {
		if _, err := client.Infer(ctx, server.Remote(), testRequest("r", "v")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		// The server closes the quiet session, and the client notices.
		for end := time.Now().Add(5 * time.Second); sessionCount(client) != 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("after call %d the session stayed open past the idle time", i)
			}
		}
	}
}

// TestSessionBusy: calls past maxSessionCalls are answered BUSY at once.
func TestSessionBusy(t *testing.T) {
	defer func(n int) { maxSessionCalls = n }(maxSessionCalls)
	maxSessionCalls = 2
	client, server := newHost(t), newHost(t)
	started, done := make(chan struct{}, 4), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client.Infer(ctx, server.Remote(), testRequest("w", "v"))
		}()
	}
	<-started
	<-started
	ans, err := client.Infer(ctx, server.Remote(), testRequest("third", "v"))
	if err != nil || ans.Error != pb.ErrorCode_BUSY {
		t.Errorf("third call on a full session: got %v, %v; want BUSY", ans, err)
	}
	cancel()
	wg.Wait()
}

// TestSessionBadFrames: anything but valid frames resets the session; a
// repeated call number is answered BAD_INPUT.
func TestSessionBadFrames(t *testing.T) {
	client, server := newHost(t), newHost(t)
	started, done := make(chan struct{}, 4), make(chan struct{})
	server.SetInferHandler(blockingHandler(started, done))
	ctx := testCtx(t, 20*time.Second)
	if err := client.host.Connect(ctx, server.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	req := testRequestWithDeadline()
	for _, tt := range []struct {
		name string
		f    *pb.SessionFrame
		raw  []byte
	}{
		{name: "neither request nor cancel", f: &pb.SessionFrame{Call: 1}},
		{name: "both", f: &pb.SessionFrame{Call: 1, Request: req, Cancel: true}},
		{name: "junk", raw: []byte("\x05hello")},
		{name: "huge", raw: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := client.host.NewStream(ctx, server.host.ID(), SessionProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			s.SetDeadline(time.Now().Add(5 * time.Second))
			if tt.f != nil {
				err = writeMsg(s, tt.f)
			} else {
				_, err = s.Write(tt.raw)
			}
			if err != nil {
				t.Fatal(err)
			}
			var a pb.SessionAnswer
			if err := readMsg(s, MaxAnswerBytes, &a, nil); err == nil || isTimeout(err) {
				t.Fatalf("got %v, %v; want the session reset", &a, err)
			}
		})
	}
	// The same call number twice while the first runs.
	s, err := client.host.NewStream(ctx, server.host.ID(), SessionProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	s.SetDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		if err := writeMsg(s, &pb.SessionFrame{Call: 9, Request: req}); err != nil {
			t.Fatal(err)
		}
	}
	var a pb.SessionAnswer
	if err := readMsg(s, MaxAnswerBytes, &a, nil); err != nil || a.Call != 9 || a.Answer.Error != pb.ErrorCode_BAD_INPUT ||
		!bytes.Contains([]byte(a.Answer.Message), []byte("already running")) {
		t.Fatalf("repeated call number: got %v, %v; want BAD_INPUT", &a, err)
	}
	if err := writeMsg(s, &pb.SessionFrame{Call: 9, Cancel: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("cancel frame did not stop the call")
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("test ran out of time")
	}
}
