package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host is one test host: a network namespace, a copy-on-write root
// filesystem (overlayfs over the pristine tree of its architecture) with
// /proc, /sys, /dev, /dev/pts and /run mounted, and sshd running in both.
type Host struct {
	Name   string // inventory name: h1, h2, ...
	Arch   string // amd64 or arm64
	NS     string // namespace, also the root end of its veth
	Addr   netip.Addr
	Dir    string // cache/hosts/NS: upper, work, root
	Root   string
	HostPK string // its sshd's public host key line
	mounts []string
	sshd   *exec.Cmd
	done   chan struct{}
}

// Start mounts the host's root, writes its host key and root's
// authorized_keys, and starts sshd in its namespace and chroot.
func (h *Host) Start(lower, clientPub, logDir string) error {
	h.Root = filepath.Join(h.Dir, "root")
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(h.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := h.mount(h.Root, "mount", "-t", "overlay", "overlay", "-o",
		fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(h.Dir, "upper"), filepath.Join(h.Dir, "work")), h.Root); err != nil {
		return err
	}
	r := func(p string) string { return filepath.Join(h.Root, p) }
	steps := []struct {
		at   string
		args []string
	}{
		{r("proc"), []string{"mount", "-t", "proc", "proc", r("proc")}},
		{r("sys"), []string{"mount", "-t", "sysfs", "-o", "ro", "sysfs", r("sys")}},
		{r("dev"), []string{"mount", "--bind", "/dev", r("dev")}},
		{r("dev/pts"), []string{"mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=620", "devpts", r("dev/pts")}},
		{r("dev/ptmx"), []string{"mount", "--bind", r("dev/pts/ptmx"), r("dev/ptmx")}},
		{r("run"), []string{"mount", "-t", "tmpfs", "-o", "mode=755,size=64m", "tmpfs", r("run")}},
	}
	for _, s := range steps {
		if err := h.mount(s.at, s.args...); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(r("run/sshd"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(r("etc/hostname"), []byte(h.Name+"\n"), 0o644); err != nil {
		return err
	}
	key := r("etc/ssh/ssh_host_ed25519_key")
	os.Remove(key)
	os.Remove(key + ".pub")
	if err := run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h.NS, "-f", key); err != nil {
		return err
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return err
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		return fmt.Errorf("%s: bad host key %q", h.Name, pub)
	}
	h.HostPK = f[0] + " " + f[1]
	if err := os.MkdirAll(r("root/.ssh"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(r("root/.ssh/authorized_keys"), []byte(clientPub), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(logDir, h.Name+"-sshd.log"))
	if err != nil {
		return err
	}
	// nsenter enters the network namespace only: the mounts above stay
	// those of the root mount namespace, where teardown unmounts them.
	h.sshd = exec.Command("nsenter", "--net=/run/netns/"+h.NS, "chroot", h.Root,
		"/usr/sbin/sshd", "-D", "-e", "-h", "/etc/ssh/ssh_host_ed25519_key",
		"-o", "ListenAddress="+h.Addr.String()+":22",
		"-o", "PermitRootLogin=prohibit-password", "-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no", "-o", "UsePAM=no", "-o", "UseDNS=no",
		"-o", "MaxStartups=64", "-o", "MaxSessions=64", "-o", "PidFile=/run/sshd.pid")
	h.sshd.Stdout, h.sshd.Stderr = logf, logf
	h.sshd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.sshd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start sshd: %w", h.Name, err)
	}
	h.done = make(chan struct{})
	go func() { h.sshd.Wait(); logf.Close(); close(h.done) }()
	// Wait (bounded) until it accepts connections.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-h.done:
			b, _ := os.ReadFile(filepath.Join(logDir, h.Name+"-sshd.log"))
			return fmt.Errorf("%s: sshd exited: %s", h.Name, tail(b, 10))
		default:
		}
		c, err := net.DialTimeout("tcp", h.Addr.String()+":22", time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: sshd does not accept connections on %s:22 after 60s", h.Name, h.Addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (h *Host) mount(at string, args ...string) error {
	if err := run(args...); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	h.mounts = append(h.mounts, at)
	return nil
}

// Stop kills every process of the host (its namespace's, and any whose root
// is its tree) by PID, then unmounts in reverse order. It returns the first
// error and tries everything.
func (h *Host) Stop() error {
	killTree(h.NS, h.Root)
	if h.done != nil {
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
		}
	}
	var first error
	for i := len(h.mounts) - 1; i >= 0; i-- {
		if err := umount(h.mounts[i]); err != nil && first == nil {
			first = err
		}
	}
	h.mounts = nil
	return first
}

// umount unmounts at, retrying briefly while it is busy, then lazily.
func umount(at string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = run("umount", at); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err2 := run("umount", "-l", at); err2 != nil {
		return err
	}
	return fmt.Errorf("%s was busy, unmounted lazily: %w", at, err)
}

// hostPIDs are the processes in namespace ns (if not "") or whose root
// directory is root or under it (if not "").
func hostPIDs(ns, root string) []int {
	seen := map[int]bool{}
	if ns != "" {
		if out, err := output("ip", "netns", "pids", ns); err == nil {
			for _, f := range strings.Fields(out) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					seen[pid] = true
				}
			}
		}
	}
	if root != "" {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			l, err := os.Readlink("/proc/" + e.Name() + "/root")
			if err == nil && (l == root || strings.HasPrefix(l, root+"/")) {
				seen[pid] = true
			}
		}
	}
	pids := make([]int, 0, len(seen))
	for p := range seen {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}

// killTree sends SIGTERM to the host's processes, waits up to 5s, then
// SIGKILLs what is left and waits up to 3s more.
func killTree(ns, root string) {
	for _, p := range hostPIDs(ns, root) {
		syscall.Kill(p, syscall.SIGTERM)
	}
	for i := 0; i < 50 && len(hostPIDs(ns, root)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range hostPIDs(ns, root) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	for i := 0; i < 30 && len(hostPIDs(ns, root)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// mountsUnder are the mount points at or under dir in mountinfo (the
// content of /proc/self/mountinfo), deepest first.
func mountsUnder(mountinfo, dir string) []string {
	var ms []string
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		at := unescapeMount(f[4])
		if at == dir || strings.HasPrefix(at, dir+"/") {
			ms = append(ms, at)
		}
	}
	// Later mounts are listed later; unmount in reverse of that order.
	for i, j := 0, len(ms)-1; i < j; i, j = i+1, j-1 {
		ms[i], ms[j] = ms[j], ms[i]
	}
	return ms
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CleanLeftovers removes what a killed earlier run left: processes in our
// namespaces or chroots, mounts under hostsDir, our namespaces and links,
// and the host directories. It reports what it removed.
func CleanLeftovers(hostsDir string, log func(string, ...any)) error {
	nsOut, _ := output("ip", "netns", "list")
	var nsNames []string
	for _, l := range strings.Split(nsOut, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			nsNames = append(nsNames, f[0])
		}
	}
	nss := ownNames(nsNames)
	for _, ns := range nss {
		if pids := hostPIDs(ns, ""); len(pids) > 0 {
			log("leftover: killing %d processes of namespace %s", len(pids), ns)
			killTree(ns, "")
		}
	}
	if pids := hostPIDs("", hostsDir); len(pids) > 0 {
		log("leftover: killing %d processes with a root under %s", len(pids), hostsDir)
		killTree("", hostsDir)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var first error
	for _, m := range mountsUnder(string(mi), hostsDir) {
		log("leftover: unmounting %s", m)
		if err := umount(m); err != nil && first == nil {
			first = err
		}
	}
	for _, ns := range nss {
		log("leftover: deleting namespace %s", ns)
		if err := delNS(ns); err != nil && first == nil {
			first = err
		}
	}
	links, _ := os.ReadDir("/sys/class/net")
	var linkNames []string
	for _, l := range links {
		linkNames = append(linkNames, l.Name())
	}
	for _, l := range ownNames(linkNames) {
		if !linkExists(l) {
			continue
		}
		log("leftover: deleting link %s", l)
		if err := run("ip", "link", "del", l); err != nil && linkExists(l) && first == nil {
			first = err
		}
	}
	ents, _ := os.ReadDir(hostsDir)
	for _, e := range ents {
		if len(ownNames([]string{e.Name()})) == 1 {
			log("leftover: removing %s", filepath.Join(hostsDir, e.Name()))
			if err := removeTree(filepath.Join(hostsDir, e.Name())); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// removeTree removes dir unless something is still mounted under it (then
// it would delete files of the mounted filesystem).
func removeTree(dir string) error {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if ms := mountsUnder(string(mi), dir); len(ms) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted", dir, strings.Join(ms, ", "))
	}
	return os.RemoveAll(dir)
}
