package api_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// dialCounter is an HTTP client whose dials are counted by address.
type dialCounter struct {
	mu    sync.Mutex
	dials map[string]int
}

func (d *dialCounter) client() *http.Client {
	var dialer net.Dialer
	return &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		d.dials[addr]++
		d.mu.Unlock()
		return dialer.DialContext(ctx, network, addr)
	}}}
}

func (d *dialCounter) count(url string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[strings.TrimPrefix(url, "http://")]
}

// closedURL is the address of a peer that has stopped: connection refused.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

func newPool(t *testing.T, urls []string, deadFor time.Duration, hc *http.Client) *api.Pool {
	t.Helper()
	p, err := api.NewPool(urls, deadFor, api.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// TestPoolFailsOverAStoppedPeer: a request to a stopped peer (connection
// refused) is answered by the next peer; the stopped one is then skipped
// for the dead time, and tried again after it.
func TestPoolFailsOverAStoppedPeer(t *testing.T) {
	live := httptest.NewServer(&fakePeer{ready: true})
	defer live.Close()
	dead := closedURL(t)
	d := &dialCounter{dials: map[string]int{}}
	const deadFor = 300 * time.Millisecond
	p := newPool(t, []string{dead, live.URL}, deadFor, d.client())
	ctx := context.Background()

	marked := time.Now()
	resp, err := p.From(0).Classify(ctx, []byte("img"), api.Params{})
	if err != nil || resp.Status != http.StatusOK || resp.Answer.Result.Class != "7" {
		t.Fatalf("first peer stopped: %+v, %v; want the second peer's answer", resp, err)
	}
	if n := d.count(dead); n != 1 {
		t.Fatalf("%d dials to the stopped peer, want 1", n)
	}
	for range 5 {
		if _, err := p.From(0).Classify(ctx, []byte("img"), api.Params{}); err != nil {
			t.Fatal(err)
		}
		if status, _, err := p.Get(ctx, "/healthz"); err != nil || status != http.StatusOK {
			t.Fatalf("healthz: %d, %v", status, err)
		}
	}
	if n := d.count(dead); n != 1 && time.Since(marked) < deadFor {
		t.Errorf("%d dials to the stopped peer within its dead time, want it skipped", n)
	}
	// After the dead time it is tried again (and fails over again).
	for deadline := time.Now().Add(5 * time.Second); d.count(dead) < 2; time.Sleep(10 * time.Millisecond) {
		if _, err := p.From(0).Classify(ctx, []byte("img"), api.Params{}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped peer was never tried again")
		}
	}
	if took := time.Since(marked); took < deadFor {
		t.Errorf("stopped peer tried again after %v, before its dead time %v", took, deadFor)
	}
}

// TestPoolDoesNotFailOverAnAnswer: a live peer's refusal (503, too few
// variants) is returned, not retried elsewhere.
func TestPoolDoesNotFailOverAnAnswer(t *testing.T) {
	first, second := &fakePeer{}, &fakePeer{}
	s1, s2 := httptest.NewServer(first), httptest.NewServer(second)
	defer s1.Close()
	defer s2.Close()
	p := newPool(t, []string{s1.URL, s2.URL}, 0, &http.Client{})
	resp, err := p.From(0).Classify(context.Background(), []byte("few"), api.Params{})
	if err != nil || resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("503 from the first peer: %+v, %v; want it returned", resp, err)
	}
	if len(first.got) != 1 || len(second.got) != 0 {
		t.Errorf("requests: first %d, second %d; want 1 and 0", len(first.got), len(second.got))
	}
}

// TestPoolFailsOverARetryableRefusal: a peer that refuses with Retry-After
// (no variant answered it: just restarted, cut off) is passed over for the
// next; when every peer refuses so, the last refusal is the answer.
func TestPoolFailsOverARetryableRefusal(t *testing.T) {
	first, second := &fakePeer{none: true}, &fakePeer{}
	s1, s2 := httptest.NewServer(first), httptest.NewServer(second)
	defer s1.Close()
	defer s2.Close()
	p := newPool(t, []string{s1.URL, s2.URL}, 0, &http.Client{})
	resp, tr, err := p.From(0).ClassifyTrace(context.Background(), []byte("img"), api.Params{})
	if err != nil || resp.Status != http.StatusOK || tr.URL != s2.URL || tr.Tried != 2 {
		t.Fatalf("first peer refusing for now: %+v, %+v, %v; want the second peer's answer after trying 2", resp, tr, err)
	}
	if len(first.got) != 1 || len(second.got) != 1 {
		t.Errorf("requests: first %d, second %d; want 1 and 1", len(first.got), len(second.got))
	}

	s3 := httptest.NewServer(&fakePeer{none: true})
	defer s3.Close()
	p = newPool(t, []string{s1.URL, s3.URL}, 0, &http.Client{})
	resp, err = p.From(0).Classify(context.Background(), []byte("img"), api.Params{})
	if err != nil || resp.Status != http.StatusServiceUnavailable || !resp.Retryable() || resp.Answer.Error == "" {
		t.Fatalf("every peer refusing for now: %+v, %v; want the last 503 as the answer", resp, err)
	}
}

// TestPoolFailsOverAPeerDyingMidRequest: a peer that closes the connection
// before answering (killed) is failed over too.
func TestPoolFailsOverAPeerDyingMidRequest(t *testing.T) {
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer dying.Close()
	live := httptest.NewServer(&fakePeer{})
	defer live.Close()
	p := newPool(t, []string{dying.URL, live.URL}, 0, &http.Client{})
	resp, err := p.From(0).Classify(context.Background(), []byte("img"), api.Params{})
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("first peer dying mid-request: %+v, %v; want the second peer's answer", resp, err)
	}
}

// TestPoolAllStopped: every peer stopped, the error is the refusal.
func TestPoolAllStopped(t *testing.T) {
	p := newPool(t, []string{closedURL(t), closedURL(t)}, 0, &http.Client{})
	for range 2 { // the second time both are marked dead, and still tried
		_, err := p.Classify(context.Background(), []byte("img"), api.Params{})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("all stopped: %v, want connection refused", err)
		}
	}
	if _, err := api.NewPool(nil, 0); !errors.Is(err, api.ErrBadURL) {
		t.Errorf("no peers: %v, want ErrBadURL", err)
	}
}

// TestUnreachable: which failures fail over.
func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{ctx, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{ctx, &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{ctx, errors.New("wrapped: " + "x"), false},
		{ctx, context.DeadlineExceeded, false},
		{done, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{ctx, &net.OpError{Op: "dial", Err: &timeoutErr{}}, false},
		{ctx, nil, false},
	} {
		if got := api.Unreachable(c.ctx, c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string { return "i/o timeout" }
func (*timeoutErr) Timeout() bool { return true }
