package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/varpar/varpar/peer"
	"github.com/varpar/varpar/peer/api"
	"github.com/varpar/varpar/peer/api/apitest"
)

func TestBombIsSmallAndHuge(t *testing.T) {
	under := false
	for _, side := range BombSides {
		b, err := Bomb(side)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != side || cfg.Height != side {
			t.Fatalf("config %+v, %v", cfg, err)
		}
		if len(b) > 64<<10 {
			t.Errorf("%dx%d bomb is %d bytes, want under 64 KB", side, side, len(b))
		}
		px := int64(side) * int64(side)
		if px >= 40_000_000 {
			t.Errorf("%d pixels: not under the trial's 40 MP limit", px)
		}
		if px > 12_000_000 && px <= peer.DefaultConfig().MaxPixels {
			under = true
		}
	}
	if !under {
		t.Errorf("no bomb of %v is over 12 MP and within the peers' default pixel limit: none is decoded", BombSides)
	}
}

func TestSummarise(t *testing.T) {
	t0 := time.Now()
	recs := []Record{
		{Start: t0, LatencyMS: 10, Class: "cat", Label: "cat", Answered: []string{"a", "b"}, QuorumMet: true},
		{Start: t0, LatencyMS: 30, Class: "dog", Label: "cat", Answered: []string{"a"}, QuorumMet: true},
		{Start: t0, LatencyMS: 20, Class: "cat", Label: "cat", Answered: []string{"a"}, QuorumMet: false},
		{Start: t0, LatencyMS: 2150, Status: 503, Reason: "HTTP 503: quorum not reached", Peer: "http://p4"},
		{Start: t0, LatencyMS: 5, Status: 0, Reason: "connection refused", Failovers: 2},
		{Start: t0, Dropped: true, Reason: "dropped"},
		{Start: t0, LatencyMS: 9000, Bomb: true, Reason: "timeout"},
	}
	w := Summarise(recs, 2*time.Second)
	if w.Sent != 5 || w.Answered != 3 || w.Dropped != 1 || w.Late != 1 || w.BelowQuorum != 1 || w.Failovers != 2 {
		t.Errorf("got %+v", w)
	}
	if w.LateByPeer["http://p4"] != 1 || len(w.LateByPeer) != 1 {
		t.Errorf("late by peer %v", w.LateByPeer)
	}
	if w.Refused["HTTP 503: quorum not reached"] != 1 || w.Refused["connection refused"] != 1 || len(w.Refused) != 2 {
		t.Errorf("refused %v", w.Refused)
	}
	if w.Accuracy < 0.66 || w.Accuracy > 0.67 || w.P50MS != 20 || w.P99MS != 30 || w.MeanAnswer < 1.33 || w.MeanAnswer > 1.34 {
		t.Errorf("accuracy %v p50 %v p99 %v mean %v", w.Accuracy, w.P50MS, w.P99MS, w.MeanAnswer)
	}
	if a1, a2 := w.ByAnswered[1], w.ByAnswered[2]; a1.N != 2 || a1.Accuracy != 0.5 || a2.N != 1 || a2.Accuracy != 1 || len(w.ByAnswered) != 2 {
		t.Errorf("by answered %v", w.ByAnswered)
	}
	f := Failures(recs, t0.Add(-time.Second))
	if len(f) != 2 || f[0].Reason != "HTTP 503: quorum not reached" || f[0].Peer != "http://p4" || f[0].AfterFaultS != 1 ||
		f[1].Failovers != 2 || f[1].Status != 0 {
		t.Errorf("failures %+v; want the 503 then the refused connection, 1 s after the fault", f)
	}
	if e := Summarise(nil, time.Second); e.Accuracy != -1 || e.P99MS != -1 || e.Sent != 0 {
		t.Errorf("empty: %+v", e)
	}
	// A request exactly at the allowance is not late.
	if w := Summarise([]Record{{LatencyMS: 2100}}, 2*time.Second); w.Late != 0 {
		t.Errorf("2100 ms with a 2 s deadline counted late")
	}
}

func TestStalledUntil(t *testing.T) {
	t1 := time.Now()
	recs := []Record{
		{Start: t1.Add(-time.Second), LatencyMS: 1900}, // before the fault
		{Start: t1.Add(500 * time.Millisecond), LatencyMS: 1500},
		{Start: t1.Add(3 * time.Second), LatencyMS: 1999},
		{Start: t1.Add(4 * time.Second), LatencyMS: 10},
	}
	if got := StalledUntil(recs, t1, time.Second); got != 3 {
		t.Errorf("got %v, want 3", got)
	}
	if got := StalledUntil(recs[3:], t1, time.Second); got != -1 {
		t.Errorf("got %v, want -1", got)
	}
}

func TestSamples(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ss := []Sample{
		{At: at(0), Members: []string{"p1", "p2"}, Settled: true, RSSMB: map[string]float64{"p1": 50}},
		{At: at(250), Members: []string{"p1", "p2"}, Dark: []string{"v1"}, RSSMB: map[string]float64{"p1": 80}},
		{At: at(500), Err: "timeout"},
		{At: at(750), Members: []string{"p1"}, Dark: []string{"v1", "v2"}},
		{At: at(1000), Members: []string{"p1", "p2"}, Settled: true},
	}
	d := DarkSeconds(ss)
	if d["v1"] < 0.49 || d["v1"] > 0.51 || d["v2"] < 0.24 || d["v2"] > 0.26 {
		t.Errorf("dark %v; want v1 0.5 s (a failed poll counts nothing), v2 0.25 s", d)
	}
	if got := FirstAfter(ss, at(100), func(s Sample) bool { return len(s.Members) == 1 }); got < 0.64 || got > 0.66 {
		t.Errorf("view drop %v, want 0.65", got)
	}
	if got := FirstAfter(ss, at(100), func(s Sample) bool { return s.Settled }); got < 0.89 || got > 0.91 {
		t.Errorf("settled %v, want 0.9", got)
	}
	if got := FirstAfter(ss, at(1100), func(s Sample) bool { return true }); got != -1 {
		t.Errorf("after the last sample: %v", got)
	}
	if p := PeakRSS(ss); p["p1"] != 80 {
		t.Errorf("peak %v", p)
	}
}

func TestParsers(t *testing.T) {
	if kb, err := parseRSS([]byte("Name:\tvarpar\nVmPeak:\t 9 kB\nVmRSS:\t   51234 kB\n")); err != nil || kb != 51234 {
		t.Errorf("rss %d %v", kb, err)
	}
	if _, err := parseRSS([]byte("Name: x\n")); err == nil {
		t.Error("no VmRSS: want an error")
	}
	m := "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\ngo_threads 9\n"
	if n := parseGoroutines([]byte(m)); n != 42 {
		t.Errorf("goroutines %d", n)
	}
	if n := parseGoroutines([]byte("junk")); n != -1 {
		t.Errorf("junk: %d", n)
	}
	if r := Reason(503, "quorum 2 not reached: 1 of 4 variants answered in 2000.5 ms"); r != "HTTP 503: quorum N not reached: N of N variants answered in N ms" {
		t.Errorf("reason %q", r)
	}
}

// TestSendFailsOver: a connection refused by the first peer is retried on
// the next, and the answer counts with its failover.
func TestSendFailsOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Result{Class: "cat", Answered: []string{"v1"}, QuorumMet: true})
	}))
	defer live.Close()
	clients, err := api.NewPool([]string{dead, live.URL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	clients.SetHedge(ClientHedge)
	r := send(context.Background(), clients, 0, []byte("img"), "cat", api.Params{Deadline: time.Second})
	if r.Reason != "" || r.Status != 200 || r.Failovers != 1 || r.Class != "cat" || !r.QuorumMet || r.Peer != live.URL {
		t.Errorf("got %+v", r)
	}
	// Only the dead one: the failure, no failover left.
	only, err := api.NewPool([]string{dead}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r = send(context.Background(), only, 0, []byte("img"), "cat", api.Params{Deadline: time.Second})
	if r.Reason != "connection refused" || r.Failovers != 0 {
		t.Errorf("got %+v", r)
	}
}

func TestSelectPhases(t *testing.T) {
	ps, err := selectPhases(Options{Short: true})
	if err != nil || len(ps) != len(shortPhases) || ps[0].Name != shortPhases[0] {
		t.Errorf("short: %d phases, %v", len(ps), err)
	}
	if ps, _ := selectPhases(Options{}); len(ps) != len(Phases) || len(ps) < 9 {
		t.Errorf("full: %d phases", len(ps))
	}
	if _, err := selectPhases(Options{Phases: "kill9-same,nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown phase: %v", err)
	}
}

func TestAssertionsAndBars(t *testing.T) {
	good := PhaseReport{Name: "kill9-same", All: Window{Sent: 10, Answered: 10}, Baseline: Window{Sent: 3, Answered: 3}, StalledS: -1, DarkS: map[string]float64{"v1": 1}}
	bad := PhaseReport{Name: "bomb", All: Window{Sent: 10, Answered: 0, Late: 2, Refused: map[string]int{"timeout": 10}},
		Baseline: Window{Sent: 10, Answered: 8, P99MS: 10}, Fault: Window{P99MS: 1755}, DarkS: map[string]float64{"v2": 62},
		RSSPeakMB: map[string]float64{"p1": 600}, Crashed: []string{"p3 (pid 9: signal: segmentation fault)"},
		Notes: []string{"OUTSIDER ADMITTED by p1"}}
	rep := &Report{Phases: []PhaseReport{good, bad, {Name: "partition", Skipped: "no iptables"}}}
	fails := assertions(rep)
	if len(fails) != 4 || !strings.Contains(strings.Join(fails, "\n"), "crashed") || !strings.Contains(fails[2], "8 of 10 baseline") {
		t.Errorf("assertions: %q", fails)
	}
	checkBars(rep)
	if len(rep.Phases[0].Bars) != 4 {
		t.Errorf("kill9 bars: %+v", rep.Phases[0].Bars)
	}
	for _, b := range rep.Phases[0].Bars {
		if !b.OK {
			t.Errorf("good phase fails %q: %s", b.Name, b.Got)
		}
	}
	if len(rep.BarsFail) != 5 { // late, failed, dark, RSS, p99
		t.Errorf("bars failing: %q", rep.BarsFail)
	}
	md := rep.Markdown()
	for _, want := range []string{"| kill9-same | 10 | 10 | 0 |", "| bomb | 10 | 0 | 10 timeout |", "62.0 (v2)", "skipped: no iptables", "Bars failing"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestEvalCurve(t *testing.T) {
	m, err := parseEval([]byte(`{"images":5000,"subsets":[{"size":1,"mean":0.8596},{"size":4,"mean":0.8808}]}`))
	if err != nil || m[1] != 0.8596 || m[4] != 0.8808 {
		t.Fatalf("got %v %v", m, err)
	}
	for _, bad := range []string{"", "{", `{"subsets":[]}`} {
		if _, err := parseEval([]byte(bad)); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	got := curveText(map[int]Accuracy{4: {N: 10, Accuracy: 0.9}, 1: {N: 2, Accuracy: 0.5}}, m)
	if got != "1: 50.0% (eval 86.0%) n=2; 4: 90.0% (eval 88.1%) n=10" {
		t.Errorf("got %q", got)
	}
}

// FuzzParsers: what the suite reads from /proc, /metrics and varpar eval
// never panics, whatever it holds.
func FuzzParsers(f *testing.F) {
	f.Add([]byte("VmRSS:\t 51234 kB\ngo_goroutines 42\n"))
	f.Add([]byte(`{"subsets":[{"size":1,"mean":0.8}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRSS(b)
		parseGoroutines(b)
		if m, err := parseEval(b); err == nil && len(m) == 0 {
			t.Errorf("no error and no curve")
		}
	})
}

// TestCheckFile: bars checked again on a saved report.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	write := func(rep Report) string {
		b, _ := json.Marshal(rep)
		p := dir + "/report.json"
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := Report{Phases: []PhaseReport{{Name: "junk", All: Window{Sent: 5, Answered: 5}}}}
	if got := checkFile(write(ok)); got != 0 {
		t.Errorf("all bars met: exit %d", got)
	}
	late := Report{Phases: []PhaseReport{{Name: "junk", All: Window{Sent: 5, Answered: 5, Late: 1}}}}
	if got := checkFile(write(late)); got != 1 {
		t.Errorf("a late request: exit %d, want 1", got)
	}
	if got := checkFile(dir + "/none.json"); got != 2 {
		t.Errorf("no file: exit %d, want 2", got)
	}
}

// TestSendHedges: a first peer that accepts the request and stalls (as a
// frozen peer does) is hedged around: the next peer's answer is used within
// the hedge delay and a little, and counts as a failover.
func TestSendHedges(t *testing.T) {
	_, stalled := apitest.NewStalled(t)
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Result{Class: "cat", Answered: []string{"v1"}, QuorumMet: true})
	}))
	defer live.Close()
	pool, err := api.NewPool([]string{stalled.URL, live.URL}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pool.SetHedge(ClientHedge)
	r := send(context.Background(), pool, 0, []byte("img"), "cat", api.Params{Deadline: 5 * time.Second})
	if r.Reason != "" || r.Status != 200 || r.Failovers != 1 || r.Peer != live.URL {
		t.Errorf("got %+v", r)
	}
	if r.LatencyMS > float64((ClientHedge+time.Second)/time.Millisecond) {
		t.Errorf("answered after %.0f ms, want about the hedge delay %v", r.LatencyMS, ClientHedge)
	}
}
