package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// runner is one run: what it started, so that teardown can end it.
type runner struct {
	o       options
	s       *summary
	started time.Time

	id       string
	ns       string // the namespace, once made
	lock     *os.File
	work     string // the run's folder (disk image, keys, logs)
	key      string // the ssh key
	version  string
	qemu     *proc
	peer     *proc
	peerLog  string
	hostAPI  *api.Client
	playbook string
	inv      string
}

// proc is a started process and its waiter.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(name, logPath string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: c, done: make(chan struct{})}
	go func() { p.err = c.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process (by PID), waits up to grace, then
// SIGKILL.
func (p *proc) stop(grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	fmt.Printf("stopping %s (pid %d)\n", p.name, p.cmd.Process.Pid)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// cmdOut runs a command and returns its output, or an error with it.
func cmdOut(args ...string) (string, error) {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *runner) all(ctx context.Context) error {
	rnd := make([]byte, 3)
	rand.Read(rnd)
	r.id = hex.EncodeToString(rnd)
	var err error
	for _, p := range []*string{&r.o.release, &r.o.ansibleDir, &r.o.family, &r.o.cache, &r.o.out, &r.o.mkimage} {
		if *p, err = abs(*p); err != nil {
			return err
		}
	}
	if err := r.stage("preflight", r.preflight); err != nil {
		return err
	}
	if err := r.stage("image (cached or debootstrap)", func() (string, error) { return r.image(ctx) }); err != nil {
		return err
	}
	if err := r.stage("disk (mkfs.ext4 -d)", r.disk); err != nil {
		return err
	}
	if err := r.stage("network namespace + tap", r.network); err != nil {
		return err
	}
	if err := r.stage("host peer", func() (string, error) { return r.hostPeer(ctx) }); err != nil {
		return err
	}
	if err := r.stage("boot to ssh", func() (string, error) { return r.boot(ctx) }); err != nil {
		return err
	}
	if err := r.stage("ansible site.yml", func() (string, error) { return r.ansible(ctx) }); err != nil {
		return err
	}
	if err := r.stage("unit under systemd", func() (string, error) { return r.unit(ctx) }); err != nil {
		return err
	}
	if err := r.stage("joins the host peer", func() (string, error) { return r.join(ctx) }); err != nil {
		return err
	}
	if err := r.stage("systemctl stop leaves", func() (string, error) { return r.stopLeaves(ctx) }); err != nil {
		return err
	}
	if err := r.stage("systemctl start rejoins", func() (string, error) { return r.startRejoins(ctx) }); err != nil {
		return err
	}
	if err := r.stage("reboot rejoins", func() (string, error) { return r.reboot(ctx) }); err != nil {
		return err
	}
	return r.stage("poweroff", func() (string, error) { return r.poweroff(ctx) })
}

func (r *runner) preflight() (string, error) {
	if err := os.MkdirAll(r.o.cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(r.o.cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return "", fmt.Errorf("another test-deploy-vm holds %s: %w", lock.Name(), err)
	}
	r.lock = lock
	// Under the lock, anything named like this test's is a leftover.
	if err := cleanLeftovers(); err != nil {
		return "", err
	}
	runs := filepath.Join(r.o.cache, "runs")
	os.RemoveAll(runs)
	r.work = filepath.Join(runs, r.id)
	if err := os.MkdirAll(r.work, 0o700); err != nil {
		return "", err
	}
	for _, f := range []string{"varpar-linux-amd64", "varpar-linux-arm64", "SHA256SUMS"} {
		if _, err := os.Stat(filepath.Join(r.o.release, f)); err != nil {
			return "", fmt.Errorf("release artifact missing (run make release): %w", err)
		}
	}
	r.playbook = filepath.Join(r.o.ansibleDir, "site.yml")
	if _, err := os.Stat(r.playbook); err != nil {
		return "", fmt.Errorf("the role's playbook: %w", err)
	}
	if _, err := os.Stat(filepath.Join(r.o.family, "family.json")); err != nil {
		return "", fmt.Errorf("model family: %w", err)
	}
	r.version = r.o.version
	if r.version == "" {
		out, err := cmdOut(filepath.Join(r.o.release, "varpar-linux-amd64"), "version")
		if err != nil {
			return "", err
		}
		if r.version, err = parseVersion(out); err != nil {
			return "", err
		}
	}
	r.s.Version = r.version
	return "version " + r.version + ", run " + r.id, nil
}

// parseVersion reads `varpar version`'s first line, "varpar <version>".
func parseVersion(out string) (string, error) {
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	f := strings.Fields(first)
	if len(f) < 2 || f[0] != "varpar" {
		return "", fmt.Errorf("varpar version printed %q, want a first line \"varpar <version>\"", first)
	}
	return f[1], nil
}

func (r *runner) image(ctx context.Context) (string, error) {
	c := exec.CommandContext(ctx, "bash", r.o.mkimage, r.o.cache, fmt.Sprintf("%s/%d", guestAddr, linkBits))
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", r.o.mkimage, err)
	}
	b, _ := os.ReadFile(filepath.Join(r.o.cache, "stamp"))
	return string(b), nil
}

func (r *runner) disk() (string, error) {
	img := filepath.Join(r.work, "disk.img")
	if _, err := cmdOut("mkfs.ext4", "-q", "-F", "-L", "varpar-root", "-d", filepath.Join(r.o.cache, "rootfs"), img, "3G"); err != nil {
		return "", err
	}
	r.key = filepath.Join(r.work, "id_ed25519")
	b, err := os.ReadFile(filepath.Join(r.o.cache, "id_ed25519"))
	if err != nil {
		return "", err
	}
	return img, os.WriteFile(r.key, b, 0o600)
}

func (r *runner) network() (string, error) {
	ns := nsPrefix + r.id
	if _, err := cmdOut("ip", "netns", "add", ns); err != nil {
		return "", err
	}
	r.ns = ns
	for _, args := range [][]string{
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "tuntap", "add", "dev", tapName, "mode", "tap"},
		{"ip", "-n", ns, "addr", "add", fmt.Sprintf("%s/%d", hostAddr, linkBits), "dev", tapName},
		{"ip", "-n", ns, "link", "set", tapName, "up"},
	} {
		if _, err := cmdOut(args...); err != nil {
			return "", err
		}
	}
	return ns, nil
}

func (r *runner) inNS(args ...string) []string {
	return append([]string{"ip", "netns", "exec", r.ns}, args...)
}

func (r *runner) hostPeer(ctx context.Context) (string, error) {
	bin := filepath.Join(r.o.release, "varpar-linux-amd64")
	key, tok := filepath.Join(r.work, "cluster.key"), filepath.Join(r.work, "api.token")
	if _, err := cmdOut(bin, "keygen", "--out", key, "--token", tok); err != nil {
		return "", err
	}
	r.peerLog = filepath.Join(r.work, "host-peer.log")
	var err error
	r.peer, err = start("host peer", r.peerLog, r.inNS(bin, "peer",
		"--node-name", hostName, "--data-dir", filepath.Join(r.work, "host-data"),
		"--cluster-key", key, "--api-token", tok, "--family", r.o.family, "--threads", "1",
		"--gossip-addr", fmt.Sprintf("%s:%d", hostAddr, gossipPrt),
		"--advertise-addr", hostAddr,
		"--p2p-addr", fmt.Sprintf("%s:%d", hostAddr, p2pPort),
		"--http-addr", fmt.Sprintf("%s:%d", hostAddr, httpPort))...)
	if err != nil {
		return "", err
	}
	r.hostAPI, err = api.NewClient(fmt.Sprintf("http://%s:%d", hostAddr, httpPort), api.WithTokenFile(tok), api.WithHTTPClient(nsHTTPClient(r.ns)))
	if err != nil {
		return "", err
	}
	var last error
	for i := 0; i < 240; i++ {
		if r.peer.exited() {
			return "", fmt.Errorf("host peer exited: %v\n%s", r.peer.err, tail(r.peerLog, 20))
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		last = r.hostAPI.Ready(cctx)
		cancel()
		if last == nil {
			return fmt.Sprintf("%s ready at %s (pid %d)", hostName, hostAddr, r.peer.cmd.Process.Pid), nil
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("host peer not ready after 2 min: %v\n%s", last, tail(r.peerLog, 20))
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func (r *runner) boot(ctx context.Context) (string, error) {
	args := r.inNS("qemu-system-aarch64",
		"-M", "virt", "-cpu", r.o.cpu, "-m", fmt.Sprint(r.o.memMB), "-smp", "2",
		"-nographic", "-monitor", "none", "-serial", "file:"+filepath.Join(r.work, "console.log"),
		"-kernel", filepath.Join(r.o.cache, "vmlinuz"), "-initrd", filepath.Join(r.o.cache, "initrd.img"),
		"-append", "root=/dev/vda rw console=ttyAMA0 net.ifnames=0 panic=30",
		"-drive", "file="+filepath.Join(r.work, "disk.img")+",format=raw,if=virtio",
		"-netdev", "tap,id=n0,ifname="+tapName+",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
		"-device", "virtio-rng-pci")
	fmt.Println(strings.Join(args, " "))
	t := time.Now()
	var err error
	if r.qemu, err = start("qemu", filepath.Join(r.work, "qemu.log"), args...); err != nil {
		return "", err
	}
	if err := r.waitSSH(ctx, ""); err != nil {
		return "", err
	}
	r.s.BootSeconds = secs(time.Since(t))
	return fmt.Sprintf("ssh answered %.0f s after qemu started (pid %d)", r.s.BootSeconds, r.qemu.cmd.Process.Pid), nil
}

// waitSSH waits until ssh runs a command in the guest, and, when notBoot is
// set, until the guest's boot id differs from it.
func (r *runner) waitSSH(ctx context.Context, notBoot string) error {
	deadline := time.Now().Add(r.o.bootWait)
	for time.Now().Before(deadline) {
		if r.qemu.exited() {
			return fmt.Errorf("qemu exited (%v):\n%s\nconsole:\n%s", r.qemu.err, tail(filepath.Join(r.work, "qemu.log"), 10), tail(filepath.Join(r.work, "console.log"), 30))
		}
		out, err := r.ssh(ctx, 20*time.Second, "cat /proc/sys/kernel/random/boot_id")
		if err == nil && strings.TrimSpace(out) != "" && strings.TrimSpace(out) != notBoot {
			return nil
		}
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return err
		}
	}
	return fmt.Errorf("no ssh to %s within %v; console:\n%s", guestAddr, r.o.bootWait, tail(filepath.Join(r.work, "console.log"), 30))
}

func (r *runner) sshArgs() []string {
	return []string{"-i", r.key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"}
}

// ssh runs a shell command in the guest as root.
func (r *runner) ssh(ctx context.Context, timeout time.Duration, command string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := r.inNS(append(append([]string{"ssh"}, r.sshArgs()...), "root@"+guestAddr, command)...)
	var buf bytes.Buffer
	c := exec.CommandContext(cctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = &buf, &buf
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := c.Run()
	if err != nil {
		return buf.String(), fmt.Errorf("ssh %q: %w: %s", command, err, strings.TrimSpace(buf.String()))
	}
	return buf.String(), nil
}

func (r *runner) ansible(ctx context.Context) (string, error) {
	r.inv = filepath.Join(r.work, "inventory.yml")
	if err := os.WriteFile(r.inv, []byte(r.inventory()), 0o600); err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, r.o.playWait)
	defer cancel()
	logPath := filepath.Join(r.work, "ansible.log")
	f, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	args := r.inNS("ansible-playbook", "-i", r.inv, r.playbook)
	c := exec.CommandContext(cctx, args[0], args[1:]...)
	c.Dir = r.o.ansibleDir
	c.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(r.o.ansibleDir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=False")
	c.Stdout = io.MultiWriter(os.Stdout, f)
	c.Stderr = c.Stdout
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("ansible-playbook %s: %w (log %s)", r.playbook, err, logPath)
	}
	return recap(logPath), nil
}

// recap is the PLAY RECAP line of an ansible log.
func recap(logPath string) string {
	b, _ := os.ReadFile(logPath)
	ls := strings.Split(string(b), "\n")
	for i, l := range ls {
		if strings.HasPrefix(l, "PLAY RECAP") && i+1 < len(ls) {
			return strings.Join(strings.Fields(ls[i+1]), " ")
		}
	}
	return ""
}

// inventory is the generated inventory: one host, the VM, with the
// harness variables of the shared interface.
func (r *runner) inventory() string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	return fmt.Sprintf(`# generated by deploy/testvm for one run
varpar:
  hosts:
    %s:
      ansible_host: %s
      ansible_user: root
      ansible_ssh_private_key_file: %s
      ansible_ssh_common_args: "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
      ansible_python_interpreter: /usr/bin/python3
      varpar_node_name: %s
      varpar_advertise_addr: %s
  vars:
    varpar_service_manager: systemd
    varpar_release_dir: %s
    varpar_version: %s
    varpar_family_dir: %s
    varpar_cluster_key_file: %s
    varpar_api_token_file: %s
    varpar_seeds:
      - "%s:%d"
`, vmName, guestAddr, q(r.key), vmName, guestAddr, q(r.o.release), q(r.version), q(r.o.family),
		q(filepath.Join(r.work, "cluster.key")), q(filepath.Join(r.work, "api.token")), hostAddr, gossipPrt)
}
