//go:build linux

package main

// Integration tests: real `varpar peer` processes on 127.0.0.1, started by
// deploy/local from the binary TestMain builds. Linux only: the
// peers get Pdeathsig, so that a test killed half-way leaves none behind.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/peer/api"
)

const readyTimeout = 60 * time.Second

// testFamily is the trained MNIST family in the source tree.
func testFamily(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs("../../models/mnist")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := format.LoadFamily(dir); err != nil {
		tb.Skipf("models/mnist does not load: %v", err)
	}
	return dir
}

// mnistTest loads the MNIST test digits once.
var mnistTest = sync.OnceValues(func() (*data.Dataset, error) {
	path, err := findMNISTTest()
	if err != nil {
		return nil, err
	}
	return data.LoadDataset(path, data.LoadOptions{})
})

// digit returns MNIST test digit i as PNG, and its class name.
func digit(tb testing.TB, i int) ([]byte, string) {
	tb.Helper()
	d, err := mnistTest()
	if err != nil {
		tb.Skipf("MNIST test digits: %v", err)
	}
	b, err := load.EncodePNG(d.Samples[i])
	if err != nil {
		tb.Fatal(err)
	}
	return b, d.Classes[d.Samples[i].Label]
}

// startTestCluster makes an empty cluster whose peers the test's cleanup
// stops, checking that no peer process, temporary file or goroutine is left.
func startTestCluster(t *testing.T, family string) *local.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	leaks := goleak.IgnoreCurrent()
	c, err := local.New(varparBin, family, local.WithProcAttr(&syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("peer logs:" + local.LogTails(c.Peers(), 20))
		}
		var pids []int
		for _, p := range c.Peers() {
			pids = append(pids, p.PID())
		}
		if err := c.Shutdown(5*time.Second, false); err != nil {
			t.Errorf("stopping the peers: %v", err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("peer process %d still exists after the test (kill 0: %v)", pid, err)
			}
		}
		if _, err := os.Stat(c.Dir()); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", c.Dir(), err)
		}
		goleak.VerifyNone(t, leaks)
	})
	return c
}

func startPeers(t *testing.T, c *local.Cluster, specs ...local.Spec) []*local.Peer {
	t.Helper()
	for i := range specs {
		specs[i].Args = append([]string{"--threads", "1"}, specs[i].Args...)
	}
	ps, err := c.Start(specs...)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func named(prefix string, n int) []local.Spec {
	var out []local.Spec
	for i := range n {
		out = append(out, local.Spec{Name: fmt.Sprintf("%s%d", prefix, i)})
	}
	return out
}

func waitReady(t *testing.T, c *local.Cluster, ps []*local.Peer) *api.ClusterView {
	t.Helper()
	cv, err := c.WaitReady(context.Background(), ps, readyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

// eventually polls cond every 100 ms until it returns "" or timeout passes,
// then fails with its last complaint.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rawHTTP is a client for requests the API client would not send (no or
// wrong tokens, malformed queries); its connections close with the test.
func rawHTTP(tb testing.TB) *http.Client {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
	tb.Cleanup(hc.CloseIdleConnections)
	return hc
}

func classifyAt(t *testing.T, p *local.Peer, img []byte, params api.Params) (*api.ClassifyResponse, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := p.API.Classify(ctx, img, params)
	if err != nil {
		t.Fatalf("classify at %s: %v", p.Name, err)
	}
	return resp, time.Since(start)
}

// TestClusterJoinAndClassify: four peers agree on the plan, serve every
// variant, and each answers a digit as local fusion does.
func TestClusterJoinAndClassify(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, label := digit(t, 0)
	ps := startPeers(t, c, named("p", 4)...)
	waitReady(t, c, ps)
	var first *api.ClusterView
	eventually(t, 20*time.Second, func() string {
		for i, p := range ps {
			cv, err := p.API.Cluster(context.Background())
			if err != nil {
				return err.Error()
			}
			if !cv.AllServed() {
				return p.Name + ": not every variant served"
			}
			if i == 0 {
				first = cv
			} else if !maps.EqualFunc(cv.Assignment, first.Assignment, slices.Equal) {
				return fmt.Sprintf("%s's plan %v differs from %s's %v", p.Name, cv.Assignment, ps[0].Name, first.Assignment)
			}
		}
		return ""
	})
	if len(first.Variants) != 4 {
		t.Fatalf("family of %d variants, want 4", len(first.Variants))
	}
	for _, v := range first.Variants {
		if len(first.Assignment[v]) != 1 {
			t.Errorf("4 peers, 4 variants: %s has holders %v, want one", v, first.Assignment[v])
		}
	}

	// Local fusion of every variant, as predict computes it.
	file := filepath.Join(t.TempDir(), "digit.png")
	writeFile(t, file, string(img))
	out, errOut, code := run(t, "predict", "--family", fam, "--k", "3", "--json", file)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, errOut)
	}
	var local prediction
	if err := json.Unmarshal([]byte(out), &local); err != nil {
		t.Fatal(err)
	}
	if local.Top[0].Class != label {
		t.Errorf("local fusion says %s for a %s", local.Top[0].Class, label)
	}
	// Quorum 4: every variant answers, so no early decision and the same set.
	all := slices.Sorted(slices.Values(first.Variants))
	for _, p := range ps {
		resp, _ := classifyAt(t, p, img, api.Params{K: 3, Quorum: 4, Deadline: 5 * time.Second})
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %v", p.Name, resp.Err())
		}
		r := resp.Answer
		if got := slices.Sorted(slices.Values(r.Answered)); !slices.Equal(got, all) || len(r.Missing) != 0 || r.Early || !r.QuorumMet {
			t.Errorf("%s: answered %v, missing %v, early %v; want all of %v", p.Name, r.Answered, r.Missing, r.Early, all)
		}
		if r.Class != local.Top[0].Class || r.Index != local.Top[0].Index || abs(r.Confidence-local.Top[0].Prob) > 1e-5 {
			t.Errorf("%s: class %s (%d) confidence %.6f; local fusion: %s (%d) %.6f", p.Name, r.Class, r.Index, r.Confidence,
				local.Top[0].Class, local.Top[0].Index, local.Top[0].Prob)
		}
		if len(r.Top) != 3 || r.Top[0].Class != r.Class {
			t.Errorf("%s: top %+v", p.Name, r.Top)
		}
	}

	// The client commands against the real cluster.
	out, errOut, code = run(t, "classify", "--peer", "http://"+ps[2].HTTPAddr, "--k", "3", "--quorum", "4", file)
	if want := fmt.Sprintf("%s: %s (%.4f) answered ", file, local.Top[0].Class, local.Top[0].Prob); code != 0 ||
		!strings.HasPrefix(out, want) || !strings.Contains(out, " missing - late ") {
		t.Errorf("classify: exit %d, stdout %q, stderr %q; want %q... missing - late", code, out, errOut, want)
	}
	mnist, err := findMNISTTest()
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, p := range ps {
		urls = append(urls, "http://"+p.HTTPAddr)
	}
	out, errOut, code = run(t, "loadgen", "--peer", strings.Join(urls, ","), "--images", mnist, "--rate", "40", "--duration", "1s", "--json")
	if code != 0 {
		t.Fatalf("loadgen: exit %d: %s", code, errOut)
	}
	var s load.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.Scheduled != 40 || s.Successes != 40 || s.Accuracy == nil || *s.Accuracy < 0.9 || s.MeanAnswering < 1 || s.MeanAnswering > 4 {
		t.Errorf("loadgen: %s", out)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
