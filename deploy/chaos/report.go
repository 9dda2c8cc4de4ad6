package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// LateAllowance is how far past its deadline a request may come back
// before it counts as late (issue 10's bar: deadline + 100 ms).
const LateAllowance = 100 * time.Millisecond

// Window is what the load generator saw in one window of a phase.
type Window struct {
	Sent        int            `json:"sent"` // sent to a peer (drops apart)
	Dropped     int            `json:"dropped_by_client"`
	Answered    int            `json:"answered"`
	Refused     map[string]int `json:"refused"`                // by reason (HTTP refusals and transport failures)
	Late        int            `json:"late"`                   // came back (or timed out) past deadline + LateAllowance
	LateByPeer  map[string]int `json:"late_by_peer,omitempty"` // by the API URL the request went to last
	BelowQuorum int            `json:"answered_below_quorum"`
	Failovers   int            `json:"client_failovers"`
	Accuracy    float64        `json:"accuracy"` // of answers whose image had a label; -1: none
	P50MS       float64        `json:"p50_ms"`   // of answered requests; -1: none
	P99MS       float64        `json:"p99_ms"`
	MeanAnswer  float64        `json:"mean_variants_answered"`
	// Accuracy by the number of variants that answered, to set next to
	// varpar eval's subset curve (Report.EvalSubsets).
	ByAnswered map[int]Accuracy `json:"accuracy_by_variants_answered"`
}

// Accuracy is the share of labelled answers that were right.
type Accuracy struct {
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
}

// Summarise turns records into a Window (bombs apart).
func Summarise(recs []Record, deadline time.Duration) Window {
	w := Window{Refused: map[string]int{}, Accuracy: -1, P50MS: -1, P99MS: -1, ByAnswered: map[int]Accuracy{}}
	rightBy := map[int]int{}
	var lat []float64
	labelled, right, variants := 0, 0, 0
	limit := float64(deadline+LateAllowance) / float64(time.Millisecond)
	for _, r := range recs {
		if r.Bomb {
			continue
		}
		if r.Dropped {
			w.Dropped++
			continue
		}
		w.Sent++
		w.Failovers += r.Failovers
		if r.LatencyMS > limit {
			w.Late++
			if w.LateByPeer == nil {
				w.LateByPeer = map[string]int{}
			}
			w.LateByPeer[r.Peer]++
		}
		if r.Reason != "" {
			w.Refused[r.Reason]++
			continue
		}
		w.Answered++
		lat = append(lat, r.LatencyMS)
		variants += len(r.Answered)
		if !r.QuorumMet {
			w.BelowQuorum++
		}
		if r.Label != "" {
			labelled++
			a := w.ByAnswered[len(r.Answered)]
			a.N++
			w.ByAnswered[len(r.Answered)] = a
			if r.Class == r.Label {
				right++
				rightBy[len(r.Answered)]++
			}
		}
	}
	if labelled > 0 {
		w.Accuracy = float64(right) / float64(labelled)
	}
	for n, a := range w.ByAnswered {
		a.Accuracy = float64(rightBy[n]) / float64(a.N)
		w.ByAnswered[n] = a
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		w.P50MS, w.P99MS = Percentile(lat, 50), Percentile(lat, 99)
		w.MeanAnswer = float64(variants) / float64(len(lat))
	}
	return w
}

// Percentile is the nearest-rank percentile of sorted values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Failed is the requests sent that got no answer.
func (w Window) Failed() int { return w.Sent - w.Answered }

// StalledUntil is the seconds after t until the last request that started
// at or after t and took longer than slow (-1: none did): how long requests
// kept waiting on a missing peer.
func StalledUntil(recs []Record, t time.Time, slow time.Duration) float64 {
	last := -1.0
	for _, r := range recs {
		if r.Bomb || r.Dropped || r.Start.Before(t) {
			continue
		}
		if r.LatencyMS > float64(slow)/float64(time.Millisecond) {
			last = max(last, r.Start.Sub(t).Seconds())
		}
	}
	return last
}

// PhaseReport is one phase's result.
type PhaseReport struct {
	Name        string             `json:"name"`
	What        string             `json:"what"`
	Faulted     []string           `json:"faulted"`
	Skipped     string             `json:"skipped,omitempty"`
	Error       string             `json:"error,omitempty"`
	Baseline    Window             `json:"baseline"`
	Fault       Window             `json:"fault"`
	Recovery    Window             `json:"recovery"`
	All         Window             `json:"all"`
	Bombs       *Window            `json:"bombs,omitempty"`
	DarkS       map[string]float64 `json:"dark_seconds"` // per variant, whole phase
	ViewDropS   *float64           `json:"view_drop_s"`  // fault start until the view lost the faulted peers; -1: never; null: not expected to
	SettleS     float64            `json:"settle_s"`     // heal until members, serving and plan settled; -1: not in the window
	StalledS    float64            `json:"stalled_s"`    // fault start until the last request started that took > 1 s; -1: none
	RSSBeforeMB map[string]float64 `json:"rss_before_mb"`
	RSSPeakMB   map[string]float64 `json:"rss_peak_mb"`
	RSSAfterMB  map[string]float64 `json:"rss_after_mb"`
	GorBefore   map[string]int     `json:"goroutines_before"`
	GorAfter    map[string]int     `json:"goroutines_after"`
	LogLines    map[string]int     `json:"log_lines"` // written during the phase
	Crashed     []string           `json:"crashed,omitempty"`
	Failures    []Failure          `json:"failures,omitempty"` // the first few requests not answered, to find out why
	Notes       []string           `json:"notes,omitempty"`
	Bars        []Bar              `json:"bars,omitempty"`
}

// Failure is one client request not answered (not a bomb, not dropped by
// the client), as the load generator saw it.
type Failure struct {
	AfterFaultS float64 `json:"after_fault_s"` // its start, from the fault's (negative: in the baseline)
	LatencyMS   float64 `json:"latency_ms"`
	Peer        string  `json:"peer"` // whose answer or last failure the client got
	Failovers   int     `json:"failovers"`
	Status      int     `json:"status"`
	Reason      string  `json:"reason"`
}

// maxFailures is how many failures a phase report lists.
const maxFailures = 10

// Failures lists the first maxFailures client requests of recs not
// answered, their start counted from fault.
func Failures(recs []Record, fault time.Time) []Failure {
	var out []Failure
	for _, r := range recs {
		if r.Bomb || r.Dropped || r.Reason == "" || len(out) == maxFailures {
			continue
		}
		out = append(out, Failure{AfterFaultS: r.Start.Sub(fault).Seconds(), LatencyMS: r.LatencyMS, Peer: r.Peer,
			Failovers: r.Failovers, Status: r.Status, Reason: r.Reason})
	}
	return out
}

// Bar is one of issue 10's bars checked on a phase.
type Bar struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Got  string `json:"got"`
}

// Report is a whole run.
type Report struct {
	Machine  string    `json:"machine"`
	Commit   string    `json:"commit"`
	Started  time.Time `json:"started"`
	Elapsed  string    `json:"elapsed"`
	Short    bool      `json:"short"`
	Peers    int       `json:"peers"`
	Family   string    `json:"family"`
	Images   string    `json:"images"`
	Rate     float64   `json:"rate"`
	Deadline string    `json:"deadline"`
	Windows  string    `json:"windows"`
	Subnet   string    `json:"subnet"`
	Outsider string    `json:"outsider"`
	// varpar eval's mean fused accuracy over every subset of each size, on
	// the whole test set (the run sends a shuffled part of it); --eval.
	EvalSubsets map[int]float64 `json:"eval_subset_mean,omitempty"`
	Phases      []PhaseReport   `json:"phases"`
	Failures    []string        `json:"failures,omitempty"` // assertions that failed
	BarsFail    []string        `json:"bars_failing,omitempty"`
}

func fmtMS(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func viewDrop(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmtS(*v)
}

func fmtS(v float64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f", v)
}

// refusedText lists the refusals by reason, most first.
func refusedText(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], trimReason(k)))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "; ")
}

func maxOf[V int | float64](m map[string]V) V {
	var out V
	for _, v := range m {
		out = max(out, v)
	}
	return out
}

// Markdown is the report as a table, one row per phase.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s; %d peers, %s, %g req/s, deadline %s, windows %s; commit %s.\n\n",
		r.Machine, r.Peers, r.Family, r.Rate, r.Deadline, r.Windows, r.Commit)
	b.WriteString("| phase | sent | answered | refused (by reason) | late | below quorum | accuracy | p50 / p99 ms (base → fault) | max s dark (variant) | view drop / settle s | peak RSS MB | goroutines (before → after) | log lines |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		if p.Skipped != "" {
			fmt.Fprintf(&b, "| %s | skipped: %s |||||||||||| \n", p.Name, p.Skipped)
			continue
		}
		a := p.All
		acc := "-"
		if a.Accuracy >= 0 {
			acc = fmt.Sprintf("%.1f%%", 100*a.Accuracy)
		}
		darkV, darkS := "", 0.0
		for _, v := range slices.Sorted(maps.Keys(p.DarkS)) {
			if p.DarkS[v] > darkS {
				darkV, darkS = v, p.DarkS[v]
			}
		}
		dark := "0"
		if darkS > 0 {
			dark = fmt.Sprintf("%.1f (%s)", darkS, darkV)
		}
		gb, ga := 0, 0
		for _, v := range p.GorBefore {
			gb += v
		}
		for _, v := range p.GorAfter {
			ga += v
		}
		refused := refusedText(a.Refused)
		if a.Dropped > 0 {
			refused += fmt.Sprintf("; %d dropped by the client", a.Dropped)
		}
		if p.Bombs != nil {
			refused += fmt.Sprintf(" (bombs: %d answered, %s)", p.Bombs.Answered, refusedText(p.Bombs.Refused))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %d | %s | %s / %s → %s / %s | %s | %s / %s | %.0f | %d → %d | %d |\n",
			p.Name, a.Sent, a.Answered, refused, a.Late, a.BelowQuorum, acc,
			fmtMS(p.Baseline.P50MS), fmtMS(p.Baseline.P99MS), fmtMS(p.Fault.P50MS), fmtMS(p.Fault.P99MS),
			dark, viewDrop(p.ViewDropS), fmtS(p.SettleS), maxOf(p.RSSPeakMB), gb, ga, sumInt(p.LogLines))
	}
	b.WriteString("\nAccuracy by variants answered (all windows)")
	if len(r.EvalSubsets) > 0 {
		b.WriteString(", next to varpar eval's mean over subsets of that size")
	}
	b.WriteString(" (the peer decides early once the variants still out cannot change the class, so easy images end with fewer answers: compare the overall accuracy with eval's all-variant figure, not row by row):\n\n")
	for _, p := range r.Phases {
		if p.Skipped == "" {
			fmt.Fprintf(&b, "- %s: %s\n", p.Name, curveText(p.All.ByAnswered, r.EvalSubsets))
		}
	}
	if len(r.BarsFail) > 0 {
		b.WriteString("\nBars failing (--bars):\n")
		for _, f := range r.BarsFail {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}

func sumInt(m map[string]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}
