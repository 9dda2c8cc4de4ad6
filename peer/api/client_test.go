package api_test

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/varpar/varpar/peer/api"
)

// fakePeer serves the API as a peer does, from the api types: "bad" bodies
// get 400, "few" bodies 503 with the partial result, anything else class 7.
type fakePeer struct {
	token string
	ready bool
	none  bool // every classify: 503, Retry-After, no variant answered (a peer just started)
	mu    sync.Mutex
	got   []string // query strings received
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		io.WriteString(w, "ok\n")
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: "missing or wrong bearer token"})
		return
	}
	switch r.Method + " " + r.URL.Path {
	case "GET /readyz":
		if !f.ready {
			writeJSON(w, http.StatusServiceUnavailable, api.ErrorBody{Error: "loading variant w1"})
			return
		}
		io.WriteString(w, "ok\n")
		return
	case "GET /v1/cluster":
		writeJSON(w, http.StatusOK, api.ClusterView{Self: "a", Variants: []string{"w1"},
			Members: []api.MemberInfo{{Name: "a", Variants: []string{"w1"}}}, Serving: map[string][]string{"w1": {"a"}}})
		return
	case "POST /v1/classify":
	default:
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, r.URL.RawQuery)
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	res := api.Result{RequestID: "r1", Class: "7", Index: 7, Confidence: 0.95,
		Top:      []api.ClassScore{{Index: 7, Class: "7", Score: 0.95}},
		Answered: []string{"w1", "w2"}, Missing: []string{"w3"}, QuorumMet: true, Early: true, LatencyMS: 3.5,
		Timings: map[string]api.VariantTiming{"w1": {Member: "a", ArrivedMS: 1, ComputeMS: 0.5}}}
	switch {
	case f.none:
		w.Header().Set("Retry-After", "1")
		res.QuorumMet, res.Early, res.Answered, res.Missing = false, false, nil, []string{"w1", "w2", "w3"}
		writeJSON(w, http.StatusServiceUnavailable, api.ClassifyAnswer{Error: "peer: quorum not reached: 0 of 1 needed variants answered", Result: &res})
		return
	}
	switch string(body) {
	case "bad":
		writeJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "nn: not a JPEG or PNG image"})
	case "few":
		res.QuorumMet, res.Early, res.Answered, res.Missing = false, false, []string{"w1"}, []string{"w2", "w3"}
		writeJSON(w, http.StatusServiceUnavailable, api.ClassifyAnswer{Error: "peer: quorum not reached", Result: &res})
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func newClient(tb testing.TB, url string, opts ...api.Option) *api.Client {
	tb.Helper()
	c, err := api.NewClient(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}

func TestClassify(t *testing.T) {
	f := &fakePeer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, srv.URL)
	ctx := context.Background()

	resp, err := c.Classify(ctx, []byte("img"), api.Params{K: 2, Deadline: 1500 * time.Millisecond})
	if err != nil || resp.Status != 200 || resp.Err() != nil {
		t.Fatalf("good image: %+v, %v", resp, err)
	}
	r := resp.Answer.Result
	if r.Class != "7" || !r.Early || !slices.Equal(r.Answered, []string{"w1", "w2"}) || r.Timings["w1"].ComputeMS != 0.5 {
		t.Errorf("good image: got %+v", r)
	}
	if f.got[0] != "deadline_ms=1500&k=2" {
		t.Errorf("query %q, want deadline_ms=1500&k=2", f.got[0])
	}

	resp, err = c.Classify(ctx, []byte("few"), api.Params{})
	var ae *api.Error
	if err != nil || !errors.As(resp.Err(), &ae) || ae.Status != 503 || ae.Msg != "peer: quorum not reached" {
		t.Fatalf("few: %+v, %v", resp, err)
	}
	if got := resp.Answer.Result.Answered; !slices.Equal(got, []string{"w1"}) {
		t.Errorf("few: the partial result says %v answered, want [w1]", got)
	}

	resp, err = c.Classify(ctx, []byte("bad"), api.Params{})
	if err != nil || resp.Err() == nil || !strings.Contains(resp.Err().Error(), "400 Bad Request: nn: not a JPEG or PNG image") {
		t.Fatalf("bad: %+v, %v", resp, err)
	}
	if resp.Answer.Result == nil {
		t.Error("bad: Answer.Result is nil")
	}
}

func TestClassifyNotAResult(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") }))
	defer srv.Close()
	if _, err := newClient(t, srv.URL).Classify(context.Background(), []byte("x"), api.Params{}); err == nil ||
		!strings.Contains(err.Error(), "not a classify result") {
		t.Errorf("a 200 with HTML: %v", err)
	}
	// A refusal in plain text is still an answer, its text the message.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "go away", http.StatusBadGateway) }))
	defer srv2.Close()
	resp, err := newClient(t, srv2.URL).Classify(context.Background(), []byte("x"), api.Params{})
	if err != nil || resp.Err() == nil || !strings.HasSuffix(resp.Err().Error(), ": go away") {
		t.Errorf("a 502 in text: %+v, %v", resp, err)
	}
}

func TestToken(t *testing.T) {
	f := &fakePeer{token: "0123456789abcdef0123", ready: true}
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte(f.token+"\n"), 0o600)
	ctx := context.Background()

	without := newClient(t, srv.URL)
	var ae *api.Error
	if _, err := without.Cluster(ctx); !errors.As(err, &ae) || ae.Status != 401 || ae.Msg != "missing or wrong bearer token" {
		t.Errorf("no token: %v", err)
	}
	if err := without.Healthz(ctx); err != nil {
		t.Errorf("healthz needs no token: %v", err)
	}
	with := newClient(t, srv.URL, api.WithTokenFile(good))
	if cv, err := with.Cluster(ctx); err != nil || cv.Self != "a" || !cv.HasMember("a") || cv.HasMember("b") || !cv.AllServed() {
		t.Errorf("with the token: %+v, %v", cv, err)
	}
	if err := with.Ready(ctx); err != nil {
		t.Errorf("ready: %v", err)
	}

	for name, content := range map[string]string{"empty": " \n", "two lines": "a\nb\n"} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := api.NewClient(srv.URL, api.WithTokenFile(p)); err == nil || !strings.Contains(err.Error(), "want one line") {
			t.Errorf("%s token file: %v", name, err)
		}
	}
	if _, err := api.NewClient(srv.URL, api.WithTokenFile(filepath.Join(dir, "none"))); err == nil ||
		!strings.Contains(err.Error(), "token file") {
		t.Errorf("missing token file: %v", err)
	}
}

func TestReady(t *testing.T) {
	f := &fakePeer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, srv.URL)
	var ae *api.Error
	if err := c.Ready(context.Background()); !errors.As(err, &ae) || ae.Status != 503 || ae.Msg != "loading variant w1" {
		t.Errorf("not ready: %v", err)
	}
	srv.Close()
	if err := c.Ready(context.Background()); err == nil || errors.As(err, &ae) {
		t.Errorf("server gone: %v, want a transport error", err)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080":          "http://127.0.0.1:8080",
		"http://127.0.0.1:8080/":  "http://127.0.0.1:8080",
		"https://h.example:1/api": "https://h.example:1/api",
	} {
		u, err := api.ParseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("%q: got %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"", "ftp://h:1", "http://", "http://h:1/?k=1"} {
		if _, err := api.ParseURL(in); !errors.Is(err, api.ErrBadURL) {
			t.Errorf("%q: got %v, want ErrBadURL", in, err)
		}
	}
}

// TestPrefix: a peer behind a path prefix is reached under it.
func TestPrefix(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/varpar/", http.StripPrefix("/varpar", &fakePeer{ready: true}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if err := newClient(t, srv.URL+"/varpar/").Ready(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestParamsQuery(t *testing.T) {
	tests := []struct {
		p    api.Params
		want string
	}{
		{api.Params{}, ""},
		{api.Params{K: 2}, "k=2"},
		{api.Params{Deadline: time.Millisecond}, "deadline_ms=1"},
		{api.Params{Deadline: 1500 * time.Microsecond}, "deadline_ms=2"},
		{api.Params{Quorum: 3, Deadline: 2 * time.Second}, "deadline_ms=2000&quorum=3"},
	}
	for _, tt := range tests {
		if got := tt.p.Query(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.p, got, tt.want)
		}
	}
	if got := (api.Params{Deadline: time.Second}).Timeout(); got != 11*time.Second {
		t.Errorf("timeout for 1s: %s", got)
	}
	if got := (api.Params{}).Timeout(); got != api.MaxDeadline+10*time.Second {
		t.Errorf("timeout for the peer's default: %s", got)
	}
}
