package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/peer/api"
)

// Suite is one run: the network, the cluster and what the phases need.
type Suite struct {
	opt          Options
	net          *Net
	cluster      *local.Cluster
	names        []string               // p1..pN; p1 is never faulted and its view is watched
	current      map[string]*local.Peer // the running instance of each name
	all          []*local.Peer          // every instance started
	killed       map[*local.Peer]bool   // instances the suite ended on purpose
	down         map[string]bool        // peers killed, frozen or cut off from p1 right now
	token        string                 // API token file
	bare         string                 // a family directory holding only family.json
	family       string                 // "" for the built-in family
	self         string                 // this program, run again as the load worker
	mu           sync.Mutex
	mon          *Monitor
	quotas       []*CPUQuota
	log          func(string, ...any)
	pendingNotes []string // notes a heal leaves for its phase
}

func logf(format string, args ...any) {
	fmt.Printf("%s chaos: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run sets the run up, runs the phases and takes everything down.
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	start := time.Now()
	s := &Suite{opt: o, current: map[string]*local.Peer{}, killed: map[*local.Peer]bool{}, down: map[string]bool{}, log: logf, family: o.Family}
	rep = &Report{Machine: machine(), Commit: commit(), Started: start.UTC(), Short: o.Short, Peers: o.Peers,
		Rate: o.Rate, Deadline: o.Deadline.String(), Windows: fmt.Sprintf("%s baseline, %s fault, %s recovery", o.Base, o.FaultW, o.Recover)}
	if o.Images == "" {
		o.Images = findImages()
	}
	if o.Images == "" {
		s.log("WARNING: no CIFAR-10 test images found (../shared/datasets/cifar10/test.tar.gz); FALLING BACK to the built-in MNIST family and GoMNIST's digits")
		if s.family, o.Images, err = mnistFallback(); err != nil {
			return rep, err
		}
	}
	s.opt = o
	rep.Family, rep.Images = s.family, o.Images
	if s.family == "" {
		rep.Family = "built-in MNIST family (fallback)"
	}
	if s.self, err = os.Executable(); err != nil {
		return rep, err
	}
	phases, err := selectPhases(o)
	if err != nil {
		return rep, err
	}
	if s.net, err = NewNet(s.log); err != nil {
		return rep, err
	}
	rep.Subnet = s.net.Prefix.String()
	s.log("run %s on %s, bridge %s", s.net.ID, s.net.Prefix, s.net.Bridge)
	defer func() {
		if cerr := s.close(err != nil || (rep != nil && len(rep.Failures) > 0)); cerr != nil {
			s.log("cleanup: %v", cerr)
		}
		rep.Elapsed = time.Since(start).Round(time.Second).String()
	}()
	if err := s.setup(ctx); err != nil {
		return rep, err
	}
	if o.Eval {
		s.log("varpar eval for the subset curve")
		if rep.EvalSubsets, err = evalSubsets(s.opt.Varpar, s.family, o.Images); err != nil {
			return rep, err
		}
	}
	for _, ph := range phases {
		if ctx.Err() != nil {
			return rep, errors.New("interrupted")
		}
		pr := s.runPhase(ctx, ph)
		rep.Phases = append(rep.Phases, pr)
		if pr.Name == "junk" && pr.Skipped == "" {
			rep.Outsider = strings.Join(pr.Notes, "; ")
		}
		s.log("phase %s: sent %d, answered %d, refused %s, late %d, p99 %s ms%s", pr.Name, pr.All.Sent, pr.All.Answered,
			refusedText(pr.All.Refused), pr.All.Late, fmtMS(pr.All.P99MS), errSuffix(pr.Error))
	}
	rep.Failures = assertions(rep)
	if o.Bars {
		checkBars(rep)
	}
	return rep, nil
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (error: " + e + ")"
}

// setup makes the namespaces and starts the peers.
func (s *Suite) setup(ctx context.Context) error {
	var err error
	if s.opt.Varpar == "" {
		dir, err := os.MkdirTemp("", "varpar-chaos-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir) // the cluster copies nothing: keep the binary until close
		s.opt.Varpar = filepath.Join(dir, "varpar")
		s.log("building %s", s.opt.Varpar)
		if out, err := exec.Command("go", "build", "-o", s.opt.Varpar, "./cmd/varpar").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %w: %s", err, out)
		}
		// Keep it past this function: move it under the cluster's directory below.
	}
	if s.opt.Varpar, err = filepath.Abs(s.opt.Varpar); err != nil {
		return err
	}
	if s.family != "" {
		if s.family, err = filepath.Abs(s.family); err != nil {
			return err
		}
	}
	if s.cluster, err = local.New(s.opt.Varpar, s.family, local.WithProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL})); err != nil {
		return err
	}
	if strings.HasPrefix(s.opt.Varpar, os.TempDir()+"/varpar-chaos-bin-") {
		moved := filepath.Join(s.cluster.Dir(), "varpar")
		if err := os.Rename(s.opt.Varpar, moved); err != nil {
			return err
		}
		s.opt.Varpar = moved
	}
	s.token = filepath.Join(s.cluster.Dir(), "api.token")
	if err := os.WriteFile(s.token, []byte(randomHex(16)+"\n"), 0o600); err != nil {
		return err
	}
	if s.family != "" {
		s.bare = filepath.Join(s.cluster.Dir(), "bare-family")
		b, err := os.ReadFile(filepath.Join(s.family, "family.json"))
		if err == nil {
			err = errors.Join(os.Mkdir(s.bare, 0o755), os.WriteFile(filepath.Join(s.bare, "family.json"), b, 0o644))
		}
		if err != nil {
			return err
		}
	}
	var specs []local.Spec
	for i := range s.opt.Peers {
		name := fmt.Sprintf("p%d", i+1)
		h, err := s.net.Add(name, byte(i+1))
		if err != nil {
			return err
		}
		s.names = append(s.names, name)
		specs = append(specs, s.spec(name, h))
	}
	for _, name := range []string{"load", "out"} {
		if _, err := s.net.Add(name, map[string]byte{"load": 100, "out": 99}[name]); err != nil {
			return err
		}
	}
	ps, err := s.cluster.Start(specs...)
	if err != nil {
		return err
	}
	for _, p := range ps {
		s.current[p.Name] = p
		s.all = append(s.all, p)
	}
	s.log("%d peers started; waiting for them to agree", len(ps))
	formed := time.Now()
	if _, err := s.cluster.WaitReady(ctx, ps, 3*time.Minute); err != nil {
		return err
	}
	s.log("the cluster formed in %.1f s", time.Since(formed).Seconds())
	s.mon = StartMonitor(func() *api.Client { return s.peer(s.names[0]).API }, s.pids, s.downSet)
	return nil
}

// spec is how peer name starts in namespace h.
func (s *Suite) spec(name string, h *Host) local.Spec {
	return local.Spec{Name: name, Host: h.Addr.String(), Wrap: h.Exec(), TokenFile: s.token,
		Args: []string{"--threads", "1", "--api-token", s.token}}
}

func (s *Suite) peer(name string) *local.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current[name]
}

// live are the current instances that run.
func (s *Suite) live() []*local.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*local.Peer
	for _, n := range s.names {
		if p := s.current[n]; p != nil && !p.Exited() {
			out = append(out, p)
		}
	}
	return out
}

func (s *Suite) pids() map[string]int {
	out := map[string]int{}
	for _, p := range s.live() {
		out[p.Name] = p.PID()
	}
	return out
}

// setDown marks names as out of reach (or back).
func (s *Suite) setDown(down bool, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if down {
			s.down[n] = true
		} else {
			delete(s.down, n)
		}
	}
}

func (s *Suite) downSet() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.down)
}

// kill ends name's process with SIGKILL, on purpose.
func (s *Suite) kill(name string) error {
	p := s.peer(name)
	s.mu.Lock()
	s.killed[p] = true
	s.down[name] = true
	s.mu.Unlock()
	return p.Kill()
}

// restart starts name again, with its data directory or an empty one (and
// a family directory holding only family.json).
func (s *Suite) restart(name string, empty bool) error {
	old := s.peer(name)
	if !old.Exited() {
		return fmt.Errorf("restart %s: still running", name)
	}
	spec := s.spec(name, s.net.Host(name))
	if empty {
		if err := os.RemoveAll(old.DataDir); err != nil {
			return err
		}
		spec.Family = s.bare
	}
	for _, o := range s.live() {
		if o.Name != name {
			spec.Seeds = append(spec.Seeds, o.GossipAddr)
		}
	}
	ps, err := s.cluster.Start(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.current[name] = ps[0]
	s.all = append(s.all, ps[0])
	delete(s.down, name)
	s.mu.Unlock()
	return nil
}

// crashed names the instances that exited without the suite ending them.
func (s *Suite) crashed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.all {
		if p.Exited() && !s.killed[p] {
			out = append(out, fmt.Sprintf("%s (pid %d: %v)", p.Name, p.PID(), p.ExitErr()))
		}
	}
	return out
}

// close takes everything down; the logs stay when keepLogs.
func (s *Suite) close(keepLogs bool) error {
	var errs []error
	if s.mon != nil {
		s.mon.Stop()
	}
	for _, q := range s.quotas {
		errs = append(errs, q.Release())
	}
	if s.cluster != nil {
		errs = append(errs, s.cluster.Shutdown(5*time.Second, keepLogs))
		if keepLogs {
			s.log("peer logs kept in %s", s.cluster.LogDir())
		}
	}
	if s.net != nil {
		errs = append(errs, s.net.Close())
	}
	return errors.Join(errs...)
}

// worker starts the load generator in the load namespace; started is when
// it began sending, and wait returns its records.
func (s *Suite) worker(ctx context.Context, cfg WorkerConfig) (started time.Time, wait func() ([]Record, error), err error) {
	args := append(s.net.Host("load").Exec(), s.self, "worker")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, _ := json.Marshal(cfg)
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return time.Time{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return time.Time{}, nil, err
	}
	r := bufio.NewReaderSize(out, 1<<20)
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "start" {
		cmd.Wait()
		return time.Time{}, nil, fmt.Errorf("load worker did not start: %q %v: %s", line, err, stderr.String())
	}
	started = time.Now()
	return started, func() ([]Record, error) {
		var recs []Record
		derr := json.NewDecoder(r).Decode(&recs)
		werr := cmd.Wait()
		if werr != nil || derr != nil {
			return recs, fmt.Errorf("load worker: %v %v: %s", werr, derr, stderr.String())
		}
		return recs, nil
	}, nil
}

// waitSettled polls the monitor's samples from since until the view holds
// every current peer, serves every variant and the plan is settled, or
// timeout passes; it returns the seconds from since (-1: not settled).
func (s *Suite) waitSettled(ctx context.Context, since time.Time, timeout time.Duration) float64 {
	deadline := time.Now().Add(timeout)
	want := slices.Clone(s.names)
	slices.Sort(want)
	for {
		got := FirstAfter(s.mon.Between(since, time.Now().Add(time.Hour)), since, func(x Sample) bool {
			return x.Settled && slices.Equal(x.Members, want)
		})
		if got >= 0 || time.Now().After(deadline) || !hold(ctx, PollEvery) {
			return got
		}
	}
}
