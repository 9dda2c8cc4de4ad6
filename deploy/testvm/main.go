// Command testvm is make test-deploy-vm: it proves the role's hardened
// systemd unit under a real systemd on arm64. It boots one Debian bookworm
// arm64 system under qemu-system-aarch64 (software emulation), runs the
// ansible role (deploy/ansible/site.yml, varpar_service_manager systemd)
// against it over ssh with the arm64 release binary, and checks that systemd
// runs the unit with its hardening, that the VM peer joins a peer running on
// this machine, that systemctl stop makes it leave gracefully (the other
// peer logs "member left", not "member failed"), that systemctl start brings
// it back and that a reboot brings it back without a manual step. It prints
// the wall time of every stage and writes summary.json to --out.
//
// Networking: qemu and the host-side peer run in a network namespace of
// their own (vpv-<id>) joined by a tap device (198.19.11.1 on the tap, the
// guest 198.19.11.2), so that both peers advertise addresses the other one
// reaches, and nothing outside the namespace sees the traffic; ssh and
// ansible-playbook run in the namespace with ip netns exec, the HTTP checks
// dial into it.
//
// Without root, or with qemu-system-aarch64, debootstrap, ansible-playbook or
// the other tools missing, it prints SKIP and exits 0 (1 with --require).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The tap link's addresses: the namespace is this run's own, so fixed
// addresses (in 198.18.0.0/15) collide with nothing outside it.
const (
	hostAddr  = "198.19.11.1"
	guestAddr = "198.19.11.2"
	linkBits  = 24
	tapName   = "vpvtap0"
	nsPrefix  = "vpv-"
	vmName    = "vm-arm64"   // the VM peer's node name
	hostName  = "host-amd64" // the peer on this machine
	httpPort  = 8080
	gossipPrt = 7946
	p2pPort   = 7947
)

type options struct {
	release    string
	ansibleDir string
	family     string
	cache      string
	out        string
	mkimage    string
	version    string
	require    bool
	keep       bool
	bootWait   time.Duration
	playWait   time.Duration
	joinWait   time.Duration
	memMB      int
	cpu        string
}

func main() {
	var o options
	flag.StringVar(&o.release, "release", "build/release", "release directory (varpar-linux-{amd64,arm64}, SHA256SUMS), as make release writes it")
	flag.StringVar(&o.ansibleDir, "ansible", "deploy/ansible", "the ansible directory (ansible.cfg, site.yml, roles/)")
	flag.StringVar(&o.family, "family", "models/mnist", "model family directory both peers serve")
	flag.StringVar(&o.cache, "cache", "/var/cache/varpar-testdeploy/vm-arm64", "where the arm64 root filesystem is cached")
	flag.StringVar(&o.out, "out", "bin/test-deploy-vm", "folder for summary.json and the logs")
	flag.StringVar(&o.mkimage, "mkimage", "deploy/testvm/mkimage.sh", "the image build script")
	flag.StringVar(&o.version, "version", "", "expected varpar version (default: what the release's amd64 binary prints)")
	flag.BoolVar(&o.require, "require", false, "fail instead of skipping when root or a tool is missing")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's disk image and work folder")
	flag.DurationVar(&o.bootWait, "boot-timeout", 20*time.Minute, "longest wait for ssh after a (re)boot")
	flag.DurationVar(&o.playWait, "play-timeout", 40*time.Minute, "longest ansible-playbook run")
	flag.DurationVar(&o.joinWait, "join-timeout", 10*time.Minute, "longest wait for the VM peer to appear in the host peer's view")
	flag.IntVar(&o.memMB, "mem", 1024, "guest memory in MiB")
	flag.StringVar(&o.cpu, "cpu", "cortex-a72", "emulated CPU")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "testvm: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) int {
	if missing := prerequisites(); missing != "" {
		fmt.Printf("SKIP test-deploy-vm: %s\n", missing)
		s := &summary{Result: "skip", Error: missing}
		if err := s.write(o.out); err != nil {
			fmt.Fprintln(os.Stderr, "testvm:", err)
		}
		if o.require {
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{o: o, s: &summary{Arch: "arm64", Networking: fmt.Sprintf("tap %s in namespace %s*: host peer %s, guest %s/%d", tapName, nsPrefix, hostAddr, guestAddr, linkBits)}, started: time.Now()}
	err := r.all(ctx)
	r.teardown()
	r.s.TotalSeconds = secs(time.Since(r.started))
	if err != nil {
		r.s.Result, r.s.Error = "fail", err.Error()
	} else {
		r.s.Result = "pass"
	}
	r.printTimes()
	if werr := r.s.write(o.out); werr != nil {
		fmt.Fprintln(os.Stderr, "testvm:", werr)
		if err == nil {
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL test-deploy-vm: %v\n", err)
		return 1
	}
	fmt.Printf("PASS test-deploy-vm in %.0f s\n", r.s.TotalSeconds)
	return 0
}

// tools are the commands the test runs, with the Debian package holding each.
var tools = [][2]string{
	{"qemu-system-aarch64", "qemu-system-arm"},
	{"debootstrap", "debootstrap"},
	{"qemu-aarch64-static", "qemu-user-static"},
	{"mkfs.ext4", "e2fsprogs"},
	{"ansible-playbook", "ansible-core"},
	{"ssh", "openssh-client"},
	{"ssh-keygen", "openssh-client"},
	{"ip", "iproute2"},
}

// prerequisites says what is missing ("" when nothing is).
func prerequisites() string {
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, "root (namespaces, tap devices, debootstrap)")
	}
	var pkgs []string
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			miss = append(miss, t[0])
			pkgs = append(pkgs, t[1])
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		miss = append(miss, "/dev/net/tun")
	}
	if len(miss) == 0 {
		return ""
	}
	msg := "missing " + strings.Join(miss, ", ")
	if len(pkgs) > 0 {
		msg += " (apt-get install " + strings.Join(uniq(pkgs), " ") + ")"
	}
	return msg
}

func uniq(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func secs(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}

// stage runs f as a named, timed stage; f's detail goes into the summary.
func (r *runner) stage(name string, f func() (string, error)) error {
	fmt.Printf("== %s\n", name)
	t := time.Now()
	detail, err := f()
	st := Stage{Name: name, Seconds: secs(time.Since(t)), OK: err == nil, Detail: detail}
	if err != nil {
		st.Error = err.Error()
	}
	r.s.Stages = append(r.s.Stages, st)
	if err != nil {
		fmt.Printf("-- %s: FAILED after %.1f s: %v\n", name, st.Seconds, err)
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Printf("-- %s: ok in %.1f s%s\n", name, st.Seconds, prefixed(" (", detail, ")"))
	return nil
}

func prefixed(pre, s, post string) string {
	if s == "" {
		return ""
	}
	return pre + s + post
}

func (r *runner) printTimes() {
	fmt.Println("== wall times")
	for _, st := range r.s.Stages {
		mark := "ok"
		if !st.OK {
			mark = "FAILED"
		}
		fmt.Printf("%-28s %8.1f s  %s\n", st.Name, st.Seconds, mark)
	}
	fmt.Printf("%-28s %8.1f s\n", "total", r.s.TotalSeconds)
}

// abs makes p absolute (relative to the working directory).
func abs(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return a, nil
}
