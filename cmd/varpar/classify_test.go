package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varpar/varpar/peer/api"
	"github.com/varpar/varpar/peer/api/apitest"
)

// fakePeer answers POST /v1/classify as a peer would: "bad" bodies get 400,
// "few" bodies 503 with the result fields, anything else class 7.
type fakePeer struct {
	token string
	mu    sync.Mutex
	got   []string // query strings received
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		httpJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: "missing or wrong bearer token"})
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/classify" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, r.URL.RawQuery)
	f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	res := api.Result{RequestID: "r1", Class: "7", Index: 7, Confidence: 0.95,
		Top:      []api.ClassScore{{Index: 7, Class: "7", Score: 0.95}},
		Answered: []string{"w1", "w2"}, Missing: []string{"w3"}, QuorumMet: true, Early: true, LatencyMS: 3.5}
	switch string(body) {
	case "bad":
		httpJSON(w, http.StatusBadRequest, api.ErrorBody{Error: "nn: not a JPEG or PNG image"})
	case "few":
		res.QuorumMet, res.Early, res.Answered, res.Missing = false, false, []string{"w1"}, []string{"w2", "w3"}
		httpJSON(w, http.StatusServiceUnavailable, api.ClassifyAnswer{Error: "peer: quorum not reached: 1 of 2 needed variants answered", Result: &res})
	default:
		httpJSON(w, http.StatusOK, res)
	}
}

func httpJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeFile(tb testing.TB, path, content string) string {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestClassifyCommand(t *testing.T) {
	fake := &fakePeer{token: "0123456789abcdef0123"}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	dir := t.TempDir()
	good := writeFile(t, filepath.Join(dir, "good.png"), "any bytes: the fake peer does not decode")
	bad := writeFile(t, filepath.Join(dir, "bad.png"), "bad")
	few := writeFile(t, filepath.Join(dir, "few.png"), "few")
	token := writeFile(t, filepath.Join(dir, "token"), fake.token+"\n")

	out, errOut, code := run(t, "classify", "--peer", srv.URL, "--token-file", token, "--k", "3", "--quorum", "2",
		"--deadline", "250500us", good)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := good + ": 7 (0.9500) answered w1,w2 missing w3 early 3.5ms\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	fake.mu.Lock()
	got := fake.got[0]
	fake.mu.Unlock()
	if want := "deadline_ms=251&k=3&quorum=2"; got != want {
		t.Errorf("query %q, want %q (deadline rounded up)", got, want)
	}

	// One bad image among good ones: the others are still classified, the
	// error names the image and carries the peer's text, and the exit is 1.
	out, errOut, code = run(t, "classify", "--peer", strings.TrimPrefix(srv.URL, "http://"), "--token-file", token, "--json", good, bad, few, filepath.Join(dir, "none.png"))
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	for _, want := range []string{bad + ": peer answered 400 Bad Request: nn: not a JPEG or PNG image",
		few + ": peer answered 503 Service Unavailable: peer: quorum not reached", "none.png", "3 of 4 images failed"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("--json printed %d lines, want 3 (good, bad, few): %q", len(lines), out)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(lines[0], `{"image":`) || first["image"] != good || first["class"] != "7" || first["early_decision"] != true {
		t.Errorf("first line %s: want the image first, then the peer's fields", lines[0])
	}
	var third api.ClassifyAnswer
	if err := json.Unmarshal([]byte(lines[2]), &third); err != nil || third.Error == "" || third.QuorumMet || len(third.Missing) != 2 {
		t.Errorf("503 line %s: want the error and the result fields (%v)", lines[2], err)
	}

	// Without the token.
	_, errOut, code = run(t, "classify", "--peer", srv.URL, good)
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "bearer token") {
		t.Errorf("no token: exit %d, stderr %q", code, errOut)
	}
}

func TestClassifyUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"classify", "x.png"}, "--peer URL is required"},
		{[]string{"classify", "--peer", "http://127.0.0.1:1"}, "requires at least 1 arg"},
		{[]string{"classify", "--peer", "ftp://127.0.0.1:1", "x.png"}, "want http://host:port"},
		{[]string{"classify", "--peer", "127.0.0.1:1", "--deadline", "61s", "x.png"}, "--deadline 1m1s"},
		{[]string{"classify", "--peer", "127.0.0.1:1", "--k", "-1", "x.png"}, "--k -1"},
		{[]string{"loadgen", "--images", "x"}, "--peer URL is required"},
		{[]string{"loadgen", "--peer", "127.0.0.1:1", "--images", "x", "--rate", "0", "--duration", "1s"}, "--rate must be > 0"},
		{[]string{"loadgen", "--peer", "127.0.0.1:1", "--images", "x", "--rate", "1e9", "--duration", "1h"}, "at most"},
		{[]string{"loadgen", "--peer", "127.0.0.1:1", "--images", "x", "--rate", "1", "--duration", "1s", "--spread", "x"}, "--spread"},
		{[]string{"classify", "--peer", "127.0.0.1:1", "--client-hedge", "-1s", "x.png"}, "--client-hedge -1s"},
		{[]string{"loadgen", "--peer", "127.0.0.1:1", "--images", "x", "--rate", "1", "--duration", "1s", "--client-hedge", "-1s"}, "--client-hedge -1s"},
		{[]string{"demo", "--peers", "1"}, "--peers 1"},
		{[]string{"demo", "--requests", "10", "--kill-after", "11"}, "--kill-after 11"},
	}
	for _, tt := range tests {
		out, errOut, code := run(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("varpar %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestWithImageField(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`{"class":"7"}` + "\n", `{"image":"a \"b\".png","class":"7"}`},
		{`{}`, `{"image":"a \"b\".png"}`},
	}
	for _, tt := range tests {
		got, err := withImageField([]byte(tt.raw), `a "b".png`)
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: got %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
	for _, raw := range []string{"", "[]", "{", "plain text"} {
		if _, err := withImageField([]byte(raw), "x"); err == nil {
			t.Errorf("%q: no error", raw)
		}
	}
}

// stoppedPeerURL is the address of a peer that has stopped: connection
// refused.
func stoppedPeerURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// TestClassifyFailsOver: with a stopped peer first among several, classify
// still answers, through the next peer.
func TestClassifyFailsOver(t *testing.T) {
	fake := &fakePeer{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	good := writeFile(t, filepath.Join(t.TempDir(), "good.png"), "any bytes: the fake peer does not decode")
	out, errOut, code := run(t, "classify", "--peer", stoppedPeerURL(t)+","+srv.URL, good, good)
	if code != 0 || strings.Count(out, ": 7 (0.9500)") != 2 {
		t.Fatalf("first peer stopped: exit %d, stdout %q, stderr %q; want both images classified by the second", code, out, errOut)
	}
}

// TestClassifyHedges: with a first peer that accepts the request and
// stalls, classify answers through the next one after --client-hedge,
// long before the deadline.
func TestClassifyHedges(t *testing.T) {
	_, stalled := apitest.NewStalled(t)
	srv := httptest.NewServer(&fakePeer{})
	defer srv.Close()
	good := writeFile(t, filepath.Join(t.TempDir(), "good.png"), "any bytes: the fake peer does not decode")
	start := time.Now()
	out, errOut, code := run(t, "classify", "--peer", stalled.URL+","+srv.URL, "--deadline", "20s", "--client-hedge", "100ms", good)
	if code != 0 || !strings.Contains(out, ": 7 (0.9500)") {
		t.Fatalf("first peer stalled: exit %d, stdout %q, stderr %q; want the image classified by the second", code, out, errOut)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v, want about the 100ms hedge", took)
	}
}
