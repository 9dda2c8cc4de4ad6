//go:build linux

package main

// Integration tests: real `varpar peer` processes on 127.0.0.1, started by
// the demo's localCluster from the binary TestMain builds. Linux only: the
// peers get Pdeathsig, so that a test killed half-way leaves none behind.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image/png"
	"io"
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

	"github.com/varpar/varpar/nn/data"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/peer"
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
	b, err := encodeSamplePNG(d.Samples[i])
	if err != nil {
		tb.Fatal(err)
	}
	return b, d.Classes[d.Samples[i].Label]
}

// startTestCluster makes an empty cluster whose peers the test's cleanup
// stops, checking that no peer process, temporary file or goroutine is left.
func startTestCluster(t *testing.T, family string) *localCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts peer processes (skipped with -short)")
	}
	leaks := goleak.IgnoreCurrent()
	c, err := newLocalCluster(varparBin, family)
	if err != nil {
		t.Fatal(err)
	}
	c.procAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("peer logs:" + logTails(c.peers, 20))
		}
		var pids []int
		for _, p := range c.peers {
			pids = append(pids, p.pid())
		}
		if err := c.shutdown(5*time.Second, false); err != nil {
			t.Errorf("stopping the peers: %v", err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("peer process %d still exists after the test (kill 0: %v)", pid, err)
			}
		}
		if _, err := os.Stat(c.dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (%v)", c.dir, err)
		}
		goleak.VerifyNone(t, leaks)
	})
	return c
}

func startPeers(t *testing.T, c *localCluster, specs ...peerSpec) []*localPeer {
	t.Helper()
	for i := range specs {
		specs[i].Args = append([]string{"--threads", "1"}, specs[i].Args...)
	}
	ps, err := c.startAll(specs...)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func named(prefix string, n int) []peerSpec {
	var out []peerSpec
	for i := range n {
		out = append(out, peerSpec{Name: fmt.Sprintf("%s%d", prefix, i)})
	}
	return out
}

func waitReady(t *testing.T, c *localCluster, ps []*localPeer) *peer.ClusterView {
	t.Helper()
	cv, err := c.waitReady(context.Background(), ps, readyTimeout)
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

func classifyAt(t *testing.T, p *localPeer, img []byte, params classifyParams) (*classifyResponse, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := p.api.classify(ctx, img, params)
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
	var first *peer.ClusterView
	eventually(t, 20*time.Second, func() string {
		for i, p := range ps {
			cv, err := p.api.cluster(context.Background())
			if err != nil {
				return err.Error()
			}
			if !allServed(cv) {
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
		resp, _ := classifyAt(t, p, img, classifyParams{K: 3, Quorum: 4, Deadline: 5 * time.Second})
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %v", p.Name, resp.err())
		}
		r := resp.Result
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
	var s loadSummary
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

// TestClusterFetchesWeights: a peer whose family folder holds only the
// manifest gets its variants' weights from the others, hash-checked.
func TestClusterFetchesWeights(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	bare := t.TempDir()
	manifest, err := os.ReadFile(filepath.Join(fam, "family.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bare, "family.json"), string(manifest))
	man, err := format.DecodeManifest("family.json", manifest)
	if err != nil {
		t.Fatal(err)
	}
	shas := map[string]string{} // sha → variant
	for _, v := range man.Variants {
		shas[v.SHA256] = v.ID
	}
	ps := startPeers(t, c, peerSpec{Name: "full0"}, peerSpec{Name: "full1"}, peerSpec{Name: "bare", Family: bare})
	cv := waitReady(t, c, ps)
	mine := []string{}
	for v, holders := range cv.Assignment {
		if slices.Contains(holders, "bare") {
			mine = append(mine, v)
		}
	}
	if len(mine) == 0 {
		t.Fatalf("the plan %v gives the bare peer nothing", cv.Assignment)
	}
	bareView, err := ps[2].api.cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(ps[2].DataDir, "models"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(ps[2].DataDir, "models", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		if e.Name() != got+".safetensors" || shas[got] == "" {
			t.Errorf("bare peer's store holds %s with sha256 %s: not a weights file of the family named by its hash", e.Name(), got)
		}
		stored[shas[got]] = true
	}
	for _, v := range mine {
		if !stored[v] {
			t.Errorf("the bare peer serves %s without its weights in its store (%v)", v, stored)
		}
		if !slices.Contains(bareView.Serving[v], "bare") {
			t.Errorf("the bare peer's view: %s served by %v, want bare among them", v, bareView.Serving[v])
		}
	}
	if !strings.Contains(ps[2].tail(200), "fetched weights") {
		t.Errorf("the bare peer's log does not mention fetching weights")
	}
}

// TestClusterSurvivesKill: kill -9 a peer that alone serves a variant. Every
// request still succeeds within its deadline, without that variant, until the
// others declare it dead and re-plan; then all variants answer again.
func TestClusterSurvivesKill(t *testing.T) {
	const deadline, margin = 400 * time.Millisecond, 150 * time.Millisecond
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 1)
	ps := startPeers(t, c, named("k", 4)...)
	cv := waitReady(t, c, ps)
	victimName, sole := chooseVictim(cv, c.names())
	if len(sole) == 0 {
		t.Fatalf("plan %v: no peer serves a variant alone", cv.Assignment)
	}
	victim := c.byName(victimName)
	live := slices.DeleteFunc(slices.Clone(ps), func(p *localPeer) bool { return p == victim })

	type record struct {
		start   time.Time
		took    time.Duration
		status  int
		err     string
		results apiResult
	}
	var (
		mu      sync.Mutex
		records []record
		stop    = make(chan struct{})
		senders sync.WaitGroup
	)
	for g := range 2 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for n := range 3000 { // bounded; stopped long before
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				p := live[(g+n)%len(live)]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				resp, err := p.api.classify(ctx, img, classifyParams{Quorum: 1, Deadline: deadline})
				r := record{start: start, took: time.Since(start)}
				cancel()
				if err != nil {
					r.err = err.Error()
				} else {
					r.status, r.results = resp.Status, resp.Result
				}
				mu.Lock()
				records = append(records, r)
				mu.Unlock()
			}
		}()
	}
	stopSenders := sync.OnceFunc(func() { close(stop); senders.Wait() })
	defer stopSenders()

	time.Sleep(time.Second)
	if err := victim.kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	// Probe with quorum = every variant: refused (503, naming the missing
	// variant) until the dead peer's variants are served again.
	var recoveredAt time.Time
	refused := 0
	for probe := 0; recoveredAt.IsZero(); probe++ {
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("all variants still not answering 30s after the kill (%d probes refused)", refused)
		}
		resp, took := classifyAt(t, live[probe%len(live)], img, classifyParams{Quorum: 4, Deadline: deadline})
		if took > deadline+margin {
			t.Errorf("probe %d took %s, deadline %s", probe, took, deadline)
		}
		switch resp.Status {
		case http.StatusOK:
			if len(resp.Result.Answered) == 4 {
				recoveredAt = time.Now()
			}
		case http.StatusServiceUnavailable:
			refused++
			if resp.Result.Error == "" || resp.Result.QuorumMet || len(resp.Result.Missing) == 0 {
				t.Errorf("503 body %s: want the error, quorum_met false and the missing variants", resp.Body)
			}
		default:
			t.Fatalf("probe %d: %v", probe, resp.err())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all variants answer again %.1fs after the kill, %d quorum-4 probes refused before", recoveredAt.Sub(killedAt).Seconds(), refused)
	time.Sleep(500 * time.Millisecond)
	stopSenders()

	before, during, after := 0, 0, 0
	for _, r := range records {
		if r.err != "" || r.status != http.StatusOK {
			t.Errorf("request at +%s: status %d %s %s", r.start.Sub(killedAt), r.status, r.err, r.results.Error)
			continue
		}
		if r.took > deadline+margin {
			t.Errorf("request at +%s took %s, deadline %s", r.start.Sub(killedAt), r.took, deadline)
		}
		switch {
		case r.start.Before(killedAt):
			before++
		case r.start.Before(recoveredAt.Add(-5 * time.Second)):
			// Before the re-plan could have happened: the dead peer's
			// variants cannot answer.
			during++
			for _, v := range sole {
				if slices.Contains(r.results.Answered, v) {
					t.Errorf("request at +%s: answered by %s, which only the dead peer served", r.start.Sub(killedAt), v)
				}
			}
		default:
			after++
		}
	}
	if before < 10 || during < 10 || after < 10 {
		t.Errorf("requests before the kill, while degraded and after: %d, %d, %d; want at least 10 each", before, during, after)
	}
	for _, p := range live {
		cv, err := p.api.cluster(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if hasMember(cv, victimName) || !allServed(cv) {
			t.Errorf("%s after recovery: members %v, serving %v", p.Name, cv.Members, cv.Serving)
		}
	}
}

// TestClusterKeyAndToken: a peer with another cluster key neither joins nor
// serves; an API with a token refuses requests without it.
func TestClusterKeyAndToken(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 2)
	dir := t.TempDir()
	token, otherKey := filepath.Join(dir, "token"), filepath.Join(dir, "other.key")
	for _, f := range []string{token, otherKey} {
		if err := peer.NewClusterKey(f); err != nil {
			t.Fatal(err)
		}
	}
	ps := startPeers(t, c,
		peerSpec{Name: "a", Args: []string{"--api-token", token}, TokenFile: token},
		peerSpec{Name: "b"})
	x := startPeers(t, c, peerSpec{Name: "x", Key: otherKey, Seeds: []string{ps[0].GossipAddr, ps[1].GossipAddr}})[0]
	waitReady(t, c, ps)
	waitReady(t, c, []*localPeer{x})
	for i := range 10 {
		resp, _ := classifyAt(t, ps[i%2], img, classifyParams{Quorum: 1})
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %v", ps[i%2].Name, resp.err())
		}
	}
	// Over a few gossip rounds, the views stay apart.
	for range 10 {
		for _, p := range append(slices.Clone(ps), x) {
			cv, err := p.api.cluster(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range cv.Members {
				names = append(names, m.Name)
			}
			slices.Sort(names)
			want := []string{"a", "b"}
			if p == x {
				want = []string{"x"}
			}
			if !slices.Equal(names, want) {
				t.Fatalf("%s sees members %v, want %v", p.Name, names, want)
			}
			for v, holders := range cv.Serving {
				if (p == x) != slices.Contains(holders, "x") {
					t.Errorf("%s: %s served by %v", p.Name, v, holders)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	// x computed nothing for a and b.
	status, metrics, err := x.api.get(context.Background(), "/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("x /metrics: %d %v", status, err)
	}
	if bytes.Contains(metrics, []byte("varpar_inferences_total{")) {
		t.Errorf("x, of another cluster, computed inferences:\n%s", grepLines(metrics, "varpar_inferences_total"))
	}

	// The token.
	a := ps[0]
	url := "http://" + a.HTTPAddr
	tok, err := readToken(token)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/v1/classify", "", http.StatusUnauthorized},
		{"POST", "/v1/classify", "Bearer wrong-token-wrong-token", http.StatusUnauthorized},
		{"POST", "/v1/classify", "Basic " + tok, http.StatusUnauthorized},
		{"GET", "/v1/cluster", "", http.StatusUnauthorized},
		{"GET", "/readyz", "", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/healthz", "", http.StatusOK},
		{"POST", "/v1/classify", "Bearer " + tok, http.StatusOK},
		{"GET", "/v1/cluster", "Bearer " + tok, http.StatusOK},
	} {
		req, _ := http.NewRequest(tt.method, url+tt.path, bytes.NewReader(img))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tt.method, tt.path, tt.auth, resp.StatusCode, body, tt.want)
		}
	}
	file := writeFile(t, filepath.Join(dir, "d.png"), string(img))
	if _, errOut, code := run(t, "classify", "--peer", url, file); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("classify without the token: exit %d, %q", code, errOut)
	}
	if out, errOut, code := run(t, "classify", "--peer", url, "--token-file", token, file); code != 0 || !strings.HasPrefix(out, file+": ") {
		t.Errorf("classify with the token: exit %d, %q %q", code, out, errOut)
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestClusterBadRequests: hostile and malformed requests get 4xx answers
// that say what is wrong, and the peer keeps serving.
func TestClusterBadRequests(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 3)
	p := startPeers(t, c, peerSpec{Name: "solo", Args: []string{"--max-image-bytes", "4096"}})[0]
	waitReady(t, c, []*localPeer{p})
	tests := []struct {
		name, query string
		body        []byte
		want        int
		msg         string
	}{
		{"garbage", "", []byte("this is not an image at all"), 400, "not a JPEG or PNG"},
		{"empty", "", nil, 400, "empty body"},
		{"truncated", "", img[:len(img)/2], 400, ""},
		{"huge declared size", "", pngHeader(100_000, 100_000), 400, "pixel"},
		{"k 0", "k=0", img, 400, `k="0": want an integer from 1 to 10`},
		{"k 11", "k=11", img, 400, `k="11"`},
		{"k text", "k=three", img, 400, `k="three"`},
		{"quorum 5", "quorum=5", img, 400, `quorum="5": want an integer from 1 to 4`},
		{"quorum 0", "quorum=0", img, 400, "quorum"},
		{"deadline 0", "deadline_ms=0", img, 400, "deadline_ms"},
		{"oversize", "", bytes.Repeat([]byte{0x89}, 5000), 413, "larger than 4096 bytes"},
		{"good", "k=2&quorum=4&deadline_ms=3000", img, 200, ""},
	}
	for _, tt := range tests {
		resp, err := c.http.Post("http://"+p.HTTPAddr+"/v1/classify?"+tt.query, "application/octet-stream", bytes.NewReader(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r apiResult
		json.Unmarshal(body, &r)
		if resp.StatusCode != tt.want || !strings.Contains(r.Error, tt.msg) || (tt.want != 200 && r.Error == "") {
			t.Errorf("%s: %d %s; want %d with an error saying %q", tt.name, resp.StatusCode, bytes.TrimSpace(body), tt.want, tt.msg)
		}
	}
	resp, err := c.http.Get("http://" + p.HTTPAddr + "/v1/classify")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/classify: %d, want 405", resp.StatusCode)
	}
	garbage := writeFile(t, filepath.Join(t.TempDir(), "garbage.png"), "GIF89a not what it says")
	if _, errOut, code := run(t, "classify", "--peer", p.HTTPAddr, garbage); code != 1 ||
		!strings.Contains(errOut, garbage+": peer answered 400 Bad Request: ") || !strings.Contains(errOut, "not a JPEG or PNG") {
		t.Errorf("classify of a garbage file: exit %d, %q", code, errOut)
	}
	status, metrics, err := p.api.get(context.Background(), "/metrics")
	if err != nil || status != 200 || !bytes.Contains(metrics, []byte(`varpar_requests_total{outcome="bad_request"} 12`)) {
		t.Errorf("/metrics: %d %v:\n%s", status, err, grepLines(metrics, "varpar_requests_total"))
	}
}

// pngHeader is the start of a PNG declaring w x h pixels: enough for a
// decoder to read the size, nothing more.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte{0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}
	for i := range 4 {
		ihdr[8+i] = byte(w >> (24 - 8*i))
		ihdr[12+i] = byte(h >> (24 - 8*i))
	}
	b.Write(ihdr)
	crc := crc32.ChecksumIEEE(ihdr[4:])
	b.Write([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	if _, err := png.DecodeConfig(bytes.NewReader(b.Bytes())); err != nil {
		panic(err)
	}
	return b.Bytes()
}
