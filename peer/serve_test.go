package peer

import (
	"context"
	"encoding/hex"
	"errors"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/peer/api"
)

// testServer serves the built-in family's first variant with queue depth
// depth, and returns it with a digit to classify.
func testServer(t *testing.T, depth int) (*server, image.Image) {
	t.Helper()
	dir, err := extractDefaultFamily(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	man, err := format.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := man.Variants[0]
	m, err := format.LoadVariant(dir, v)
	if err != nil {
		t.Fatal(err)
	}
	pool := nn.NewPool(1)
	t.Cleanup(pool.Close)
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for y := 4; y < 24; y++ { // a vertical stroke: a one
		img.Pix[y*28+13], img.Pix[y*28+14] = 255, 255
	}
	sha, err := hex.DecodeString(v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return newServer(v.ID, sha, m, pool, depth), img
}

func TestServerAnswersLikeTheRunner(t *testing.T) {
	s, img := testServer(t, 4)
	defer s.stop()
	ans, err := s.submit(context.Background(), input{img: img}, 3)
	if err != nil {
		t.Fatal(err)
	}
	idx, val := make([]int32, 3), make([]float32, 3)
	s.runner.TopK(img, idx, val)
	if !slices.Equal(ans.Indices, idx) || !slices.Equal(ans.Probs, val) || ans.VariantId != s.id || ans.ComputeUs == 0 {
		t.Fatalf("answer %v, want indices %v probs %v", ans, idx, val)
	}
}

// hold takes the server's turn, as a long computation would.
func hold(s *server) (release func()) {
	s.turn <- struct{}{}
	return func() { <-s.turn }
}

func TestServerBusyWhenTheQueueIsFull(t *testing.T) {
	const depth = 2
	s, img := testServer(t, depth)
	defer s.stop()
	release := hold(s)
	// depth+1 requests may be in the server (one computing, depth waiting);
	// the turn is held, so these depth+1 wait.
	errs := make(chan error, depth+1)
	for range depth + 1 {
		go func() {
			_, err := s.submit(context.Background(), input{img: img}, 1)
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.load() < depth+1 {
		if time.Now().After(deadline) {
			t.Fatalf("load %d, want %d waiting", s.load(), depth+1)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.submit(context.Background(), input{img: img}, 1); !errors.Is(err, errBusy) {
		t.Fatalf("request past the queue depth: got %v, want errBusy", err)
	}
	release()
	for range depth + 1 {
		if err := <-errs; err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
	if s.load() != 0 {
		t.Errorf("load %d after all answered", s.load())
	}
}

func TestServerBusyWhenTheDeadlineCannotBeMet(t *testing.T) {
	s, img := testServer(t, 8)
	defer s.stop()
	s.computeNS.Store(int64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.submit(ctx, input{img: img}, 1); !errors.Is(err, errBusy) {
		t.Fatalf("got %v, want errBusy", err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("BUSY took %v; it should be answered at once", took)
	}
}

func TestServerWaitEndsAtTheDeadline(t *testing.T) {
	s, img := testServer(t, 8)
	defer s.stop()
	s.computeNS.Store(int64(time.Microsecond))
	release := hold(s)
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.submit(ctx, input{img: img}, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

func TestServerStopFailsWaitersAndWaitsForTheRunningOne(t *testing.T) {
	s, img := testServer(t, 8)
	release := hold(s) // "the running one"
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := s.submit(context.Background(), input{img: img}, 1)
			errs <- err
		}()
	}
	for end := time.Now().Add(5 * time.Second); s.load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("load %d, want 3 waiting", s.load())
		}
	}
	stopped := make(chan struct{})
	go func() {
		s.stop()
		close(stopped)
	}()
	for range 3 {
		if err := <-errs; !errors.Is(err, errStopped) {
			t.Errorf("waiting request at stop: got %v, want errStopped", err)
		}
	}
	select {
	case <-stopped:
		t.Fatal("stop returned while a request was still computing")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	<-stopped
	if _, err := s.submit(context.Background(), input{img: img}, 1); !errors.Is(err, errStopped) {
		t.Fatalf("submit after stop: got %v, want errStopped", err)
	}
}

func TestNoneAnsweredIsRetryable(t *testing.T) {
	for _, c := range []struct {
		res  *api.Result
		want bool
	}{
		{nil, true},
		{&api.Result{Missing: []string{"w1", "w2"}}, true},
		{&api.Result{Answered: []string{"w1"}, Missing: []string{"w2"}}, false},
	} {
		if got := noneAnswered(c.res); got != c.want {
			t.Errorf("noneAnswered(%+v) = %v, want %v", c.res, got, c.want)
		}
	}
}
