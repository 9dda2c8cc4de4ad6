package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
	"go.uber.org/goleak"
)

// TestKillAndStop starts three real peers (the built-in family), waits for
// them to agree, kills one with SIGKILL, sees the survivors drop it and
// re-plan, and stops the rest, leaving no process, file or goroutine.
func TestKillAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	leaks := goleak.IgnoreCurrent()
	// Bounded: the whole test, cluster forming and failure detection
	// included, takes well under this on 2 loaded cores.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := New(varparBin, "", WithProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(5*time.Second, false) // on a failure; idempotent
	ps, err := c.Start(Spec{Name: "a", Args: []string{"--threads", "1"}}, Spec{Name: "b", Args: []string{"--threads", "1"}},
		Spec{Name: "c", Args: []string{"--threads", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Names(); strings.Join(got, ",") != "a,b,c" || c.ByName("b") != ps[1] || c.ByName("x") != nil {
		t.Fatalf("names %v", got)
	}
	cv, err := c.WaitReady(ctx, ps, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(cv.Members) != 3 || !cv.AllServed() || PlanSettled(cv) != "" {
		t.Fatalf("ready view: %+v", cv)
	}
	if tail := ps[0].Tail(3); tail == "" || strings.Count(tail, "\n") > 2 {
		t.Errorf("a's last 3 log lines: %q", tail)
	}

	// Requests through random peers, b killed after 10: none of the 30
	// after the kill goes to b, so all succeed.
	victim := ps[1]
	pid := victim.PID()
	killed := false
	run := KillRun{Peers: ps, Victim: victim, Requests: 40, KillAfter: 10, Rate: 20, Concurrency: 2, Seed: 1,
		Send:   func(ctx context.Context, c *api.Client, i int) load.Outcome { return load.SendHealthz(ctx, c) },
		Killed: func() { killed = victim.Exited() }}
	res, err := run.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !killed || res.KilledAt.IsZero() || len(res.Before) != 10 || len(res.After) != 30 {
		t.Fatalf("kill run: killed %v at %v, %d before and %d after; want 10 and 30", killed, res.KilledAt, len(res.Before), len(res.After))
	}
	for i, o := range slices.Concat(res.Before, res.After) {
		if o.ErrKind != "" || o.Start.IsZero() {
			t.Errorf("request %d: %+v", i, o)
		}
	}
	if !victim.Exited() || victim.ExitErr() == nil {
		t.Errorf("after kill -9: exited %v, %v; want a signal exit", victim.Exited(), victim.ExitErr())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Kill (kill 0: %v)", pid, err)
	}
	if err := victim.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if _, ok := WatchRecovery(ctx, ps[0].API, "b"); !ok {
		t.Fatalf("a never dropped b and re-planned:%s", LogTails(ps, 10))
	}
	if _, err := c.WaitReady(ctx, []*Peer{ps[0], ps[2]}, 30*time.Second); err != nil {
		t.Errorf("the survivors did not settle: %v", err)
	}

	pids := []int{ps[0].PID(), ps[2].PID()}
	if err := c.Shutdown(10*time.Second, false); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after Shutdown", pid)
		}
	}
	if _, err := os.Stat(c.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind (%v)", c.Dir(), err)
	}
	if err := c.Shutdown(time.Second, false); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if _, err := c.Start(Spec{Name: "late"}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Start after Shutdown: %v", err)
	}
	goleak.VerifyNone(t, leaks)
}

// TestWaitReadyReportsExit: a peer that cannot start (no such cluster key)
// fails WaitReady at once with its last log lines, and Shutdown keeps only
// the logs when asked to.
func TestWaitReadyReportsExit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	c, err := New(varparBin, "", WithProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Start(Spec{Name: "lonely", Key: c.Dir() + "/no-such-key"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.WaitReady(context.Background(), ps, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "lonely exited") || !strings.Contains(err.Error(), "last lines") {
		t.Errorf("got %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("took %s to notice the exit", time.Since(start))
	}
	if err := c.Shutdown(time.Second, true); err != nil {
		t.Error(err)
	}
	entries, err := os.ReadDir(c.Dir())
	if err != nil || len(entries) != 1 || entries[0].Name() != "logs" {
		t.Errorf("kept %v (%v), want only logs/", entries, err)
	}
	os.RemoveAll(c.Dir())
}

// TestHostAndWrap: a peer given a Host listens there on HostPorts, and one
// given a Wrap runs under it (env execs the peer, so the PID is the peer's).
func TestHostAndWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := New(varparBin, "", WithProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(5*time.Second, false)
	// A random loopback address, so that parallel runs do not collide.
	host := fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(256), 2+rand.IntN(250))
	ps, err := c.Start(Spec{Name: "wrapped", Host: host, Wrap: []string{"env", "VARPAR_WRAPPED=1"}, Args: []string{"--threads", "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].HTTPAddr != host+":8080" || ps[0].GossipAddr != host+":7946" {
		t.Errorf("addresses %s %s", ps[0].HTTPAddr, ps[0].GossipAddr)
	}
	if _, err := c.WaitReady(ctx, ps, 45*time.Second); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(ps[0].PID()) + "/environ")
	if err != nil || !strings.Contains(string(env), "VARPAR_WRAPPED=1") {
		t.Errorf("the peer's pid %d does not run under the wrapper (%v)", ps[0].PID(), err)
	}
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(ps[0].PID()) + "/cmdline")
	if !strings.Contains(string(cmdline), "peer") {
		t.Errorf("pid %d is %q, not the peer", ps[0].PID(), cmdline)
	}
}
