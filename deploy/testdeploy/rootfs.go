package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Suite, Variant and Include make the test hosts' root filesystems. Changing
// any of them (or rootfsFormat) changes the stamp, and the cached tree is
// rebuilt.
const (
	Suite        = "bookworm"
	Variant      = "minbase"
	rootfsFormat = "1" // bump when the build steps below change
)

// Include is what debootstrap adds to minbase: sshd and python3 for ansible;
// sudo for roles that become root; iproute2, procps and util-linux (setpriv,
// runuser) for the role's start path; file to check the binary's
// architecture; curl and ca-certificates for debugging by hand.
var Include = []string{"openssh-server", "python3", "sudo", "iproute2", "procps", "util-linux", "file", "curl", "ca-certificates"}

// Stamp is the content of a pristine tree's stamp file.
func Stamp(arch string) string {
	return fmt.Sprintf("format=%s\nsuite=%s\nvariant=%s\narch=%s\ninclude=%s\n", rootfsFormat, Suite, Variant, arch, strings.Join(Include, ","))
}

// Mirror reads the Debian mirror this machine's apt uses: the URIs line of
// the deb822 stanza whose Suites has bookworm in sources.list.d/debian.sources,
// else the first "deb URI bookworm ..." line of sources.list.
func Mirror(deb822, list string) (string, error) {
	if deb822 != "" {
		for _, stanza := range strings.Split(strings.ReplaceAll(deb822, "\r", ""), "\n\n") {
			var uris, suites []string
			for _, l := range strings.Split(stanza, "\n") {
				k, v, ok := strings.Cut(l, ":")
				if !ok || strings.HasPrefix(strings.TrimSpace(l), "#") {
					continue
				}
				switch strings.ToLower(strings.TrimSpace(k)) {
				case "uris":
					uris = strings.Fields(v)
				case "suites":
					suites = strings.Fields(v)
				}
			}
			for _, s := range suites {
				if s == Suite && len(uris) > 0 {
					return uris[0], nil
				}
			}
		}
	}
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		// Options in brackets: deb [arch=amd64 signed-by=...] URI suite ...
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			for len(f) > 0 {
				end := strings.HasSuffix(f[0], "]")
				f = f[1:]
				if end {
					break
				}
			}
		}
		if len(f) >= 2 && f[1] == Suite {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no Debian mirror for %s found in /etc/apt/sources.list.d/debian.sources (URIs of the stanza with Suites: %s) nor in /etc/apt/sources.list (deb URI %s ...)", Suite, Suite, Suite)
}

// machineMirror is Mirror on this machine's apt configuration.
func machineMirror() (string, error) {
	a, _ := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	b, _ := os.ReadFile("/etc/apt/sources.list")
	return Mirror(string(a), string(b))
}

// Rootfs makes sure cache/rootfs-ARCH is a pristine tree with the current
// stamp and returns its path and whether it was built now.
func Rootfs(cache, arch string, log func(string, ...any)) (string, bool, error) {
	dir := filepath.Join(cache, "rootfs-"+arch)
	stampFile := dir + ".stamp"
	if b, err := os.ReadFile(stampFile); err == nil && string(b) == Stamp(arch) {
		if _, err := os.Stat(filepath.Join(dir, "usr/sbin/sshd")); err == nil {
			return dir, false, nil
		}
	}
	mirror, err := machineMirror()
	if err != nil {
		return "", false, err
	}
	if arch != "amd64" {
		if err := Binfmt(arch); err != nil {
			return "", false, err
		}
	}
	tmp := dir + ".tmp"
	// A killed earlier build may have left debootstrap's /proc and /sys
	// mounted in its tree: unmount before removing anything.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, m := range append(mountsUnder(string(mi), tmp), mountsUnder(string(mi), dir)...) {
		log("rootfs %s: unmounting leftover %s", arch, m)
		if err := umount(m); err != nil {
			return "", false, fmt.Errorf("rootfs: %w", err)
		}
	}
	for _, p := range []string{tmp, dir} {
		if err := removeTree(p); err != nil {
			return "", false, fmt.Errorf("rootfs: %w", err)
		}
	}
	os.Remove(stampFile)
	debs := filepath.Join(cache, "debs-"+arch)
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", false, err
	}
	start := time.Now()
	args := []string{"--variant=" + Variant, "--arch=" + arch, "--include=" + strings.Join(Include, ","), "--cache-dir=" + debs}
	if arch != "amd64" {
		args = append(args, "--foreign")
	}
	args = append(args, Suite, tmp, mirror)
	log("rootfs %s: debootstrap %s (from %s)", arch, strings.Join(args, " "), mirror)
	if err := runLogged(filepath.Join(cache, "debootstrap-"+arch+".log"), "debootstrap", args...); err != nil {
		return "", false, err
	}
	if arch != "amd64" {
		log("rootfs %s: second stage under qemu-user (%.0fs so far)", arch, time.Since(start).Seconds())
		if err := runLogged(filepath.Join(cache, "debootstrap-"+arch+"-second.log"), "chroot", tmp, "/debootstrap/debootstrap", "--second-stage"); err != nil {
			return "", false, err
		}
	}
	// Every host gets its own host keys; the tree holds none.
	keys, _ := filepath.Glob(filepath.Join(tmp, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		os.Remove(k)
	}
	os.RemoveAll(filepath.Join(tmp, "var/cache/apt/archives"))
	os.MkdirAll(filepath.Join(tmp, "var/cache/apt/archives/partial"), 0o755)
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, fmt.Errorf("rootfs: %w", err)
	}
	if err := os.WriteFile(stampFile, []byte(Stamp(arch)), 0o644); err != nil {
		return "", false, fmt.Errorf("rootfs: %w", err)
	}
	log("rootfs %s: built in %.0fs", arch, time.Since(start).Seconds())
	return dir, true, nil
}

// runLogged runs a command with its output in logFile, and on failure
// returns an error with the output's last lines.
func runLogged(logFile, name string, args ...string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logFile)
		return fmt.Errorf("%s %s: %w (log %s): %s", name, strings.Join(args, " "), err, logFile, tail(b, 15))
	}
	return nil
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// qemuMagic is binfmt_misc's registration of qemu-aarch64-static with the F
// flag (the interpreter opened at registration, so it works inside chroots).
const qemuAarch64 = `:qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F`

// Binfmt makes sure arm64 programs run through qemu-aarch64-static with the
// F flag: mounts binfmt_misc if needed and registers the interpreter
// (update-binfmts, else directly). Idempotent.
func Binfmt(arch string) error {
	if arch != "arm64" {
		return fmt.Errorf("binfmt: arch %q not supported (amd64 or arm64)", arch)
	}
	const dir = "/proc/sys/fs/binfmt_misc"
	if _, err := os.Stat(dir + "/status"); err != nil {
		if err := run("mount", "-t", "binfmt_misc", "binfmt_misc", dir); err != nil {
			return fmt.Errorf("binfmt: %w", err)
		}
	}
	entry := dir + "/qemu-aarch64"
	if _, err := os.Stat(entry); err != nil {
		if _, err := exec.LookPath("update-binfmts"); err == nil {
			// Errors are looked at through the entry below.
			exec.Command("update-binfmts", "--enable", "qemu-aarch64").Run()
		}
	}
	if _, err := os.Stat(entry); err != nil {
		if _, err := os.Stat("/usr/bin/qemu-aarch64-static"); err != nil {
			return fmt.Errorf("binfmt: /usr/bin/qemu-aarch64-static not found (apt-get install qemu-user-static)")
		}
		if err := os.WriteFile(dir+"/register", []byte(qemuAarch64), 0); err != nil {
			return fmt.Errorf("binfmt: register qemu-aarch64: %w", err)
		}
	}
	b, err := os.ReadFile(entry)
	if err != nil {
		return fmt.Errorf("binfmt: %w", err)
	}
	return checkBinfmt(string(b))
}

// checkBinfmt checks a binfmt_misc entry: enabled, with the F flag.
func checkBinfmt(entry string) error {
	enabled, fix := false, false
	for _, l := range strings.Split(entry, "\n") {
		if l == "enabled" {
			enabled = true
		}
		if f, ok := strings.CutPrefix(l, "flags: "); ok && strings.Contains(f, "F") {
			fix = true
		}
	}
	if !enabled {
		return fmt.Errorf("binfmt: qemu-aarch64 is registered but disabled (update-binfmts --enable qemu-aarch64)")
	}
	if !fix {
		return fmt.Errorf("binfmt: qemu-aarch64 is registered without the F flag, so arm64 programs in a chroot cannot find the interpreter; re-register it with F (Debian's qemu-user-static does)")
	}
	return nil
}
