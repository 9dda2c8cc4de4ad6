package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Options are the command line.
type Options struct {
	Cache    string   // rootfs cache, host trees under Cache/hosts
	Archs    []string // one per host
	Ansible  string   // the role's directory (site.yml, upgrade.yml)
	Stages   string   // hosts (hosts and a ping playbook only) or all
	Out      string
	Family   string
	Images   string
	PerHost  int // images classified through each host
	Margin   float64
	HTTPPort int
	Upgrade  time.Duration // upper bound on the rolling upgrade
	Rate     float64       // loadgen rate during the upgrade
	Keep     bool          // leave the hosts up until interrupted (debugging)
	Vars     map[string]any
}

// varsFlag is --var NAME=VALUE, repeated: a JSON value, else a string.
type varsFlag map[string]any

func (v varsFlag) String() string { return fmt.Sprint(map[string]any(v)) }

func (v varsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	var j any
	if err := json.Unmarshal([]byte(val), &j); err == nil {
		v[k] = j
	} else {
		v[k] = val
	}
	return nil
}

func main() {
	var o Options
	var archs string
	flag.StringVar(&o.Cache, "cache", "/var/cache/varpar-testdeploy", "pristine root filesystems (one per arch, with a stamp) and the hosts' copy-on-write trees")
	flag.StringVar(&archs, "hosts", "amd64,amd64,arm64", "architecture of each test host (amd64 or arm64)")
	flag.StringVar(&o.Ansible, "ansible", "deploy/ansible", "directory of the role's playbooks (site.yml, upgrade.yml)")
	flag.StringVar(&o.Stages, "stages", "all", "hosts: make the hosts, check ssh and run testdata/ping.yml, then stop; all: the whole proof")
	flag.StringVar(&o.Out, "out", "bin/test-deploy", "directory for summary.json, the inventory, logs")
	flag.StringVar(&o.Family, "family", "", "model family served (default models/cifar10 if present, else models/mnist)")
	flag.StringVar(&o.Images, "images", "", "labelled test images (default: CIFAR-10's test.tar.gz in ../shared/datasets/cifar10 or /work/shared/datasets/cifar10; GoMNIST's test digits for MNIST)")
	flag.IntVar(&o.PerHost, "per-host", 50, "test images classified through each host")
	flag.Float64Var(&o.Margin, "margin", 0.10, "each host's accuracy may be this much (absolute) below varpar eval's fused accuracy on the same images")
	flag.IntVar(&o.HTTPPort, "http-port", 8080, "port of the peers' HTTP API (the role's varpar_http_port)")
	flag.DurationVar(&o.Upgrade, "upgrade-timeout", 20*time.Minute, "longest the rolling upgrade may take")
	flag.Float64Var(&o.Rate, "rate", 4, "classify requests per second during the rolling upgrade")
	flag.BoolVar(&o.Keep, "keep", false, "keep the hosts up after the checks until interrupted (for debugging by hand)")
	vars := varsFlag{}
	flag.Var(vars, "var", "NAME=VALUE: one more inventory variable for the role (JSON, else a string); repeatable")
	flag.Parse()
	o.Vars = vars
	o.Archs = strings.Split(archs, ",")
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "test-deploy:", err)
		os.Exit(2)
	}
	if why := preflight(o.Stages); why != "" {
		fmt.Printf("SKIP test-deploy: %s (it needs root and %s; CI runs it as root after apt-get install %s)\n", why, strings.Join(tools(o.Stages), ", "), strings.Join(AptPackages, " "))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := Run(ctx, o)
	if sum != nil {
		writeSummary(o.Out, sum)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-deploy: FAIL:", err)
		os.Exit(1)
	}
	if len(sum.Failures) > 0 {
		fmt.Fprintf(os.Stderr, "test-deploy: FAIL:\n  %s\n", strings.Join(sum.Failures, "\n  "))
		os.Exit(1)
	}
	fmt.Println("test-deploy: PASS")
}

// AptPackages are the Debian packages the harness needs on the control
// machine (the hosts get theirs from debootstrap: see Include).
var AptPackages = []string{"debootstrap", "openssh-client", "ansible-core", "binfmt-support", "qemu-user-static", "iproute2", "util-linux", "make"}

func (o *Options) check() error {
	if len(o.Archs) == 0 {
		return fmt.Errorf("--hosts: no hosts")
	}
	for _, a := range o.Archs {
		if a != "amd64" && a != "arm64" {
			return fmt.Errorf("--hosts: %q is not amd64 or arm64", a)
		}
	}
	if len(o.Archs) > 9 {
		return fmt.Errorf("--hosts: at most 9 hosts (got %d)", len(o.Archs))
	}
	if o.Stages != "hosts" && o.Stages != "all" {
		return fmt.Errorf("--stages: %q is not hosts or all", o.Stages)
	}
	if o.PerHost < 1 {
		return fmt.Errorf("--per-host: %d, want at least 1", o.PerHost)
	}
	if o.Margin < 0 || o.Margin > 1 {
		return fmt.Errorf("--margin: %v, want 0..1", o.Margin)
	}
	if o.Rate <= 0 {
		return fmt.Errorf("--rate: %v, want > 0", o.Rate)
	}
	return nil
}

// tools are the programs a stage needs.
func tools(stages string) []string {
	t := []string{"ip", "nsenter", "chroot", "mount", "debootstrap", "ssh", "ssh-keygen", "ansible-playbook"}
	if stages == "all" {
		t = append(t, "make", "go")
	}
	return t
}

// preflight says why the harness cannot run here ("" when it can).
func preflight(stages string) string {
	if runtime.GOOS != "linux" {
		return "not Linux"
	}
	if os.Geteuid() != 0 {
		return "not root"
	}
	for _, t := range tools(stages) {
		if _, err := exec.LookPath(t); err != nil {
			return t + " not found"
		}
	}
	if err := run("ip", "netns", "list"); err != nil {
		return "ip netns does not work: " + err.Error()
	}
	return ""
}

func writeSummary(dir string, s *Summary) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "test-deploy:", err)
		return
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "test-deploy:", err)
	}
	fmt.Printf("\n%s\nsummary: %s\n", s.Text(), filepath.Join(dir, "summary.json"))
}
