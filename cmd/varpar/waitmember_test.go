package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// settledView is a view of members a and b, each serving what the plan
// gives it, every variant served.
func settledView(self string) *api.ClusterView {
	return &api.ClusterView{Self: self, Variants: []string{"v1", "v2"},
		Members: []api.MemberInfo{
			{Name: "a", Variants: []string{"v1"}, Version: "2"},
			{Name: "b", Variants: []string{"v2"}, Version: "2"}},
		Assignment: map[string][]string{"v1": {"a"}, "v2": {"b"}},
		Serving:    map[string][]string{"v1": {"a"}, "v2": {"b"}}}
}

func TestViewMissing(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(cv *api.ClusterView)
		member  string
		version string
		want    []string // substrings, one per missing condition, in order
	}{
		{name: "settled", member: "b"},
		{name: "settled at version", member: "b", version: "2"},
		{name: "old version", member: "b", version: "3", want: []string{`b runs version "2", want "3"`}},
		{name: "not a member", member: "c", want: []string{"c is not a live member"}},
		{name: "plan moved", member: "b", edit: func(cv *api.ClusterView) {
			cv.Assignment["v2"] = []string{"a"}
		}, want: []string{"plan not settled: a serves [v1], the plan gives it [v1 v2]"}},
		{name: "unserved", member: "b", edit: func(cv *api.ClusterView) {
			cv.Members[1].Variants = nil
			cv.Serving["v2"] = nil
			cv.Assignment["v2"] = nil
		}, want: []string{"variants served by no member: v2"}},
		{name: "no variants", member: "a", edit: func(cv *api.ClusterView) {
			*cv = api.ClusterView{Self: "a", Members: []api.MemberInfo{{Name: "a"}}}
		}, want: []string{"lists no variants"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cv := settledView("a")
			if tt.edit != nil {
				tt.edit(cv)
			}
			got := viewMissing("http://x", cv, tt.member, tt.version)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d conditions like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) || !strings.HasPrefix(got[i], "http://x (self a): ") {
					t.Errorf("condition %d: got %q, want it to name the peer and contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// fakeAPIPeer serves /readyz and /v1/cluster from view(), which the test may
// change between polls; ready says whether /readyz is ok.
type fakeAPIPeer struct {
	srv   *httptest.Server
	view  atomic.Pointer[api.ClusterView]
	ready atomic.Bool
	polls atomic.Int32
}

func newFakeAPI(t *testing.T, cv *api.ClusterView, ready bool) *fakeAPIPeer {
	f := &fakeAPIPeer{}
	f.view.Store(cv)
	f.ready.Store(ready)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		f.polls.Add(1)
		json.NewEncoder(w).Encode(f.view.Load())
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !f.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: "not ready: waiting for another member"})
			return
		}
		w.Write([]byte("ok\n"))
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func newTestWait(t *testing.T, member string, fakes ...*fakeAPIPeer) (*waitMember, *bytes.Buffer) {
	var out bytes.Buffer
	w := &waitMember{member: member, rounds: 2, interval: 10 * time.Millisecond, probe: time.Second, out: &out, now: time.Now}
	for _, f := range fakes {
		c, err := api.NewClient(f.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		w.peers = append(w.peers, c)
	}
	return w, &out
}

// TestWaitMemberFakes: b comes back in steps (not ready, then missing from
// a's view, then settled); wait-member exits only after the last, having
// said what it waited for.
func TestWaitMemberFakes(t *testing.T) {
	a := newFakeAPI(t, settledView("a"), true)
	stale := settledView("a")
	stale.Members = stale.Members[:1]
	a.view.Store(stale)
	b := newFakeAPI(t, settledView("b"), false)
	w, out := newTestWait(t, "b", a, b)
	go func() {
		for b.polls.Load() < 3 {
			time.Sleep(5 * time.Millisecond)
		}
		b.ready.Store(true)
		for b.polls.Load() < 6 {
			time.Sleep(5 * time.Millisecond)
		}
		a.view.Store(settledView("a"))
	}()
	if err := w.run(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out)
	}
	if n := b.polls.Load(); n < 8 {
		t.Errorf("returned after %d polls of b; it cannot have seen b ready and listed twice in a row before 8", n)
	}
	for _, want := range []string{"/readyz: ", "waiting for another member", "b is not a live member", "b: ready, a live member in all 2 peers' views"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestWaitMemberTimeout: a member never listed by a makes wait-member fail
// naming that, and only that.
func TestWaitMemberTimeout(t *testing.T) {
	a := newFakeAPI(t, settledView("a"), true)
	cv := settledView("c")
	cv.Members = append(cv.Members, api.MemberInfo{Name: "c", Variants: []string{}})
	c := newFakeAPI(t, cv, true)
	w, out := newTestWait(t, "c", a, c)
	start := time.Now()
	err := w.run(context.Background(), 300*time.Millisecond)
	if err == nil {
		t.Fatalf("run: nil error, want a timeout\n%s", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timed out after %s, want about 300ms", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, a.srv.URL+" (self a): c is not a live member") || strings.Contains(msg, c.srv.URL) || strings.Contains(msg, "/readyz") {
		t.Errorf("error %q: want it to name a's view lacking c, and nothing about c's own peer", msg)
	}

	// No --peer is c's own and no --self: that is what is missing.
	w, _ = newTestWait(t, "c", a)
	if err := w.run(context.Background(), 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), `no --peer answers /v1/cluster with self "c"`) {
		t.Errorf("without c's own peer: %v", err)
	}
}

func TestWaitMemberUsage(t *testing.T) {
	for _, args := range [][]string{
		{"wait-member", "--member", "a"},
		{"wait-member", "--peer", "127.0.0.1:1"},
		{"wait-member", "--peer", "ftp://x", "--member", "a"},
		{"wait-member", "--peer", "127.0.0.1:1", "--member", "a", "--rounds", "0"},
		{"wait-member", "--peer", "127.0.0.1:1", "--member", "a", "--timeout", "0s"},
	} {
		if _, errOut, code := run(t, args...); code != 2 || errOut == "" {
			t.Errorf("varpar %q: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
}
