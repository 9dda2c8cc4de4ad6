package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/peer/api"
)

// PollEvery is how often the monitor reads the view and the peers' RSS.
const PollEvery = 250 * time.Millisecond

// Sample is one poll: a live peer's view and every peer's RSS.
type Sample struct {
	At      time.Time
	Err     string   // the view could not be read
	Members []string // sorted
	Dark    []string // variants no live member serves (announcing members the suite has killed, frozen or cut off do not count)
	Settled bool     // every variant served and the plan settled
	RSSMB   map[string]float64
}

// Monitor polls until stopped.
type Monitor struct {
	watch   func() *api.Client     // whose view to read (may change)
	pids    func() map[string]int  // the peers' processes
	down    func() map[string]bool // peers the suite has killed, frozen or cut off from the watched one
	mu      sync.Mutex
	samples []Sample
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// StartMonitor starts polling.
func StartMonitor(watch func() *api.Client, pids func() map[string]int, down func() map[string]bool) *Monitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{watch: watch, pids: pids, down: down, cancel: cancel}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(PollEvery)
		defer t.Stop()
		for {
			s := m.poll(ctx)
			m.mu.Lock()
			m.samples = append(m.samples, s)
			m.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *Monitor) poll(ctx context.Context) Sample {
	s := Sample{At: time.Now(), RSSMB: map[string]float64{}}
	for name, pid := range m.pids() {
		if kb, err := rssKB(pid); err == nil {
			s.RSSMB[name] = float64(kb) / 1024
		}
	}
	rctx, cancel := context.WithTimeout(ctx, PollEvery*4)
	defer cancel()
	cv, err := m.watch().Cluster(rctx)
	if err != nil {
		s.Err = err.Error()
		return s
	}
	for _, mem := range cv.Members {
		s.Members = append(s.Members, mem.Name)
	}
	slices.Sort(s.Members)
	s.Dark = darkVariants(cv, m.down())
	s.Settled = cv.AllServed() && local.PlanSettled(cv) == ""
	return s
}

// darkVariants are the variants of cv that no member outside down serves.
func darkVariants(cv *api.ClusterView, down map[string]bool) []string {
	var out []string
	for _, v := range cv.Variants {
		if !slices.ContainsFunc(cv.Serving[v], func(m string) bool { return !down[m] }) {
			out = append(out, v)
		}
	}
	return out
}

// Stop ends the polling and waits for it.
func (m *Monitor) Stop() {
	m.cancel()
	m.wg.Wait()
}

// Between returns the samples taken in [from, to).
func (m *Monitor) Between(from, to time.Time) []Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Sample
	for _, s := range m.samples {
		if !s.At.Before(from) && s.At.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// DarkSeconds is, per variant, the time the samples saw no member serve it
// (each sample stands for the time until the next one; failed polls count
// for nothing).
func DarkSeconds(samples []Sample) map[string]float64 {
	out := map[string]float64{}
	for i, s := range samples {
		if s.Err != "" || i+1 == len(samples) {
			continue
		}
		d := samples[i+1].At.Sub(s.At).Seconds()
		for _, v := range s.Dark {
			out[v] += d
		}
	}
	return out
}

// FirstAfter is the seconds from t to the first sample at or after t that
// satisfies ok; -1 when none does.
func FirstAfter(samples []Sample, t time.Time, ok func(Sample) bool) float64 {
	for _, s := range samples {
		if !s.At.Before(t) && s.Err == "" && ok(s) {
			return s.At.Sub(t).Seconds()
		}
	}
	return -1
}

// PeakRSS is the highest RSS per peer in the samples, in MB.
func PeakRSS(samples []Sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range samples {
		for n, v := range s.RSSMB {
			out[n] = max(out[n], v)
		}
	}
	return out
}

// rssKB reads VmRSS from /proc/PID/status.
func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseRSS(b)
}

// parseRSS finds "VmRSS:   1234 kB" in a /proc status file.
func parseRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("chaos: no VmRSS line")
}

// goroutines reads go_goroutines from a peer's /metrics (-1 when it cannot).
func goroutines(ctx context.Context, p *local.Peer) int {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, body, err := p.API.Get(rctx, "/metrics")
	if err != nil || status != 200 {
		return -1
	}
	return parseGoroutines(body)
}

// parseGoroutines finds the go_goroutines gauge in Prometheus text.
func parseGoroutines(metrics []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return int(v)
			}
		}
	}
	return -1
}

// logLines counts the lines of a log file.
func logLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte{'\n'})
}
