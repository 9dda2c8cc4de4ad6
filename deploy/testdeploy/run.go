package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Summary is what a run did and measured; summary.json holds it.
type Summary struct {
	Started  time.Time                   `json:"started"`
	Hosts    []HostSummary               `json:"hosts"`
	Rootfs   map[string]string           `json:"rootfs"`  // arch → "built" or "cached"
	Seconds  map[string]float64          `json:"stage_s"` // stage → wall time
	Stages   []string                    `json:"stage_order"`
	Family   string                      `json:"family,omitempty"`
	Images   string                      `json:"images,omitempty"`
	EvalAcc  *float64                    `json:"eval_fused_accuracy,omitempty"`
	Recaps   map[string]map[string]Recap `json:"recaps,omitempty"` // run → host → recap
	Upgrade  *LoadReport                 `json:"upgrade_load,omitempty"`
	Versions map[string]string           `json:"versions,omitempty"` // release name → version string
	Failures []string                    `json:"failures"`
}

// HostSummary is one host's facts and checks.
type HostSummary struct {
	Name     string   `json:"name"`
	Arch     string   `json:"arch"`
	Addr     string   `json:"addr"`
	Machine  string   `json:"uname_m"`
	Python   string   `json:"python_machine"`
	Binary   string   `json:"binary_file,omitempty"` // `file` on the running peer's binary
	Version  string   `json:"version,omitempty"`     // after site.yml
	Upgraded string   `json:"version_after_upgrade,omitempty"`
	Accuracy *float64 `json:"accuracy,omitempty"`
	Answered int      `json:"answered,omitempty"`
	Sent     int      `json:"sent,omitempty"`
}

func (s *Summary) stage(name string, start time.Time) {
	s.Seconds[name] = time.Since(start).Seconds()
	s.Stages = append(s.Stages, name)
	logf("stage %s: %.1fs", name, s.Seconds[name])
}

func (s *Summary) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	logf("FAIL: %s", msg)
	s.Failures = append(s.Failures, msg)
}

// Text is the summary for people.
func (s *Summary) Text() string {
	var b strings.Builder
	b.WriteString("stage times:\n")
	for _, st := range s.Stages {
		fmt.Fprintf(&b, "  %-22s %7.1fs\n", st, s.Seconds[st])
	}
	archs := make([]string, 0, len(s.Rootfs))
	for a := range s.Rootfs {
		archs = append(archs, a)
	}
	sort.Strings(archs)
	for _, a := range archs {
		fmt.Fprintf(&b, "rootfs %s: %s\n", a, s.Rootfs[a])
	}
	for _, h := range s.Hosts {
		fmt.Fprintf(&b, "host %s %s %s: uname -m %s, python %s", h.Name, h.Arch, h.Addr, h.Machine, h.Python)
		if h.Version != "" {
			fmt.Fprintf(&b, ", ran %q then %q", h.Version, h.Upgraded)
		}
		if h.Accuracy != nil {
			fmt.Fprintf(&b, ", accuracy %.1f%% (%d of %d answered)", 100**h.Accuracy, h.Answered, h.Sent)
		}
		b.WriteString("\n")
		if h.Binary != "" {
			fmt.Fprintf(&b, "  binary: %s\n", h.Binary)
		}
	}
	if s.EvalAcc != nil {
		fmt.Fprintf(&b, "varpar eval fused accuracy on the same images: %.1f%%\n", 100**s.EvalAcc)
	}
	for _, run := range []string{"site", "site-again", "upgrade"} {
		if r, ok := s.Recaps[run]; ok {
			fmt.Fprintf(&b, "%s recap:", run)
			for _, h := range sortedKeys(r) {
				fmt.Fprintf(&b, " %s ok=%d changed=%d failed=%d;", h, r[h].OK, r[h].Changed, r[h].Failed)
			}
			b.WriteString("\n")
		}
	}
	if u := s.Upgrade; u != nil {
		fmt.Fprintf(&b, "during the upgrade: %d requests sent, %d answered, %d failed (%d dropped), p99 %.0fms\n", u.Sent, u.Successes, u.Failed(), u.Dropped, u.Latency.P99)
	}
	if len(s.Failures) == 0 {
		b.WriteString("failures: none\n")
	} else {
		fmt.Fprintf(&b, "failures (%d):\n  %s\n", len(s.Failures), strings.Join(s.Failures, "\n  "))
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s test-deploy: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Env is a run's hosts and the control side's files.
type Env struct {
	Net    *Net
	Hosts  []*Host
	Ctl    string // cache/hosts/vpd-ID-ctl: client key, known_hosts, ssh control sockets
	Key    string
	Known  string
	LogDir string
}

// SSH runs a command on h as root over ssh and returns its output.
func (e *Env) SSH(ctx context.Context, h *Host, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append(e.sshOpts(), "root@"+h.Addr.String(), command)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s %q: %w: %s", h.Name, command, err, tail(out, 5))
	}
	return strings.TrimSpace(string(out)), nil
}

func (e *Env) sshOpts() []string {
	return []string{"-i", e.Key, "-o", "UserKnownHostsFile=" + e.Known, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "IdentitiesOnly=yes"}
}

// Run makes the hosts and runs the proof; the hosts are torn down before it
// returns. The error is a failure to run; failed checks are in Failures.
func Run(ctx context.Context, o Options) (*Summary, error) {
	s := &Summary{Started: time.Now().UTC(), Rootfs: map[string]string{}, Seconds: map[string]float64{}, Recaps: map[string]map[string]Recap{}, Versions: map[string]string{}}
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(o.Cache, "hosts"), 0o755); err != nil {
		return s, err
	}
	lock, err := os.OpenFile(filepath.Join(o.Cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return s, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return s, fmt.Errorf("another test-deploy run holds %s: %w", lock.Name(), err)
	}
	hostsDir := filepath.Join(o.Cache, "hosts")
	if err := CleanLeftovers(hostsDir, logf); err != nil {
		return s, fmt.Errorf("cleaning an earlier run's leftovers: %w", err)
	}
	s.stage("leftovers", start)

	start = time.Now()
	lowers := map[string]string{}
	for _, a := range o.Archs {
		if lowers[a] != "" {
			continue
		}
		t := time.Now()
		dir, built, err := Rootfs(o.Cache, a, logf)
		if err != nil {
			return s, err
		}
		lowers[a] = dir
		s.Rootfs[a] = "cached"
		if built {
			s.Rootfs[a] = fmt.Sprintf("built in %.0fs", time.Since(t).Seconds())
		}
	}
	s.stage("rootfs", start)
	if ctx.Err() != nil {
		return s, ctx.Err()
	}

	start = time.Now()
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return s, err
	}
	logDir, err := filepath.Abs(filepath.Join(o.Out, "logs"))
	if err != nil {
		return s, err
	}
	os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return s, err
	}
	rnd := make([]byte, 4)
	if _, err := randRead(rnd); err != nil {
		return s, err
	}
	id := fmt.Sprintf("%02x%02x", rnd[2], rnd[3])
	n, err := NewNet(id, rnd)
	if err != nil {
		return s, err
	}
	e := &Env{Net: n, LogDir: logDir, Ctl: filepath.Join(hostsDir, Prefix+id+"-ctl")}
	defer func() {
		t := time.Now()
		if err := e.Teardown(); err != nil {
			s.fail("teardown: %v", err)
		}
		s.stage("teardown", t)
	}()
	if err := e.startHosts(o, lowers, s); err != nil {
		return s, err
	}
	s.stage("hosts", start)
	if err := e.checkHosts(ctx, s); err != nil {
		return s, err
	}
	if o.Stages == "hosts" {
		start = time.Now()
		inv := filepath.Join(o.Out, "inventory.yml")
		if err := os.WriteFile(inv, []byte(e.Inventory(nil)), 0o644); err != nil {
			return s, err
		}
		recaps, out, err := e.Playbook(ctx, "", inv, testdataPlaybook(), "ping", nil)
		if err != nil {
			return s, err
		}
		s.Recaps["ping"] = recaps
		checkRecaps(s, "ping", recaps, e.Hosts, false)
		for _, h := range e.Hosts {
			want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[h.Arch]
			if !strings.Contains(out, h.Name+" uname -m: "+want) {
				s.fail("ping playbook: %s did not report uname -m %s", h.Name, want)
			}
		}
		s.stage("ping-playbook", start)
		e.keep(ctx, o)
		return s, nil
	}
	err = e.Proof(ctx, o, s)
	e.keep(ctx, o)
	return s, err
}

// keep waits for an interrupt with --keep.
func (e *Env) keep(ctx context.Context, o Options) {
	if !o.Keep {
		return
	}
	logf("--keep: hosts are up; ssh -i %s -o UserKnownHostsFile=%s root@ADDR; interrupt to tear down", e.Key, e.Known)
	for _, h := range e.Hosts {
		logf("  %s %s %s", h.Name, h.Arch, h.Addr)
	}
	<-ctx.Done()
}

func testdataPlaybook() string {
	p, _ := filepath.Abs("deploy/testdeploy/testdata/ping.yml")
	return p
}

// startHosts makes the client key and starts every host.
func (e *Env) startHosts(o Options, lowers map[string]string, s *Summary) error {
	if err := os.MkdirAll(e.Ctl, 0o700); err != nil {
		return err
	}
	e.Key = filepath.Join(e.Ctl, "id_ed25519")
	e.Known = filepath.Join(e.Ctl, "known_hosts")
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-deploy-"+e.Net.ID, "-f", e.Key); err != nil {
		return err
	}
	pub, err := os.ReadFile(e.Key + ".pub")
	if err != nil {
		return err
	}
	var known strings.Builder
	for i, a := range o.Archs {
		ns := fmt.Sprintf("%s%s-h%d", Prefix, e.Net.ID, i+1)
		addr, err := e.Net.AddNS(ns, byte(i+1))
		if err != nil {
			return err
		}
		h := &Host{Name: fmt.Sprintf("h%d", i+1), Arch: a, NS: ns, Addr: addr, Dir: filepath.Join(filepath.Dir(e.Ctl), ns)}
		e.Hosts = append(e.Hosts, h)
		if err := h.Start(lowers[a], string(pub), e.LogDir); err != nil {
			return err
		}
		fmt.Fprintf(&known, "%s %s\n", addr, h.HostPK)
		logf("host %s (%s) up at %s", h.Name, a, addr)
	}
	return os.WriteFile(e.Known, []byte(known.String()), 0o600)
}

// checkHosts checks ssh into every host and what it reports as its machine.
func (e *Env) checkHosts(ctx context.Context, s *Summary) error {
	for _, h := range e.Hosts {
		out, err := e.SSH(ctx, h, "uname -m; python3 -c 'import platform; print(platform.machine())'")
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		hs := HostSummary{Name: h.Name, Arch: h.Arch, Addr: h.Addr.String()}
		if len(f) == 2 {
			hs.Machine, hs.Python = f[0], f[1]
		}
		want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[h.Arch]
		if hs.Machine != want || hs.Python != want {
			s.fail("%s (%s): uname -m and python say %q, want %s", h.Name, h.Arch, out, want)
		}
		s.Hosts = append(s.Hosts, hs)
	}
	return nil
}

// Teardown stops every host, deletes the namespaces and bridge and removes
// the host trees and the control directory.
func (e *Env) Teardown() error {
	var errs []error
	for _, h := range e.Hosts {
		errs = append(errs, h.Stop())
		// Keep the peers' logs (the role's default data dir) for a look
		// after the trees are gone.
		logs, _ := filepath.Glob(filepath.Join(h.Dir, "upper/var/lib/varpar/*.log"))
		for _, l := range logs {
			if b, err := os.ReadFile(l); err == nil {
				os.WriteFile(filepath.Join(e.LogDir, h.Name+"-"+filepath.Base(l)), b, 0o644)
			}
		}
	}
	errs = append(errs, e.Net.Close())
	for _, h := range e.Hosts {
		errs = append(errs, removeTree(h.Dir))
	}
	errs = append(errs, os.RemoveAll(e.Ctl))
	return errors.Join(errs...)
}
