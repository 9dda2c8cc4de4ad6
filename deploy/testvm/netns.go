package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDialer dials from inside the named network namespace: the socket is
// made on a thread moved into it (a socket stays in the namespace it was
// made in), and the thread moves back before it is unlocked.
func netnsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("setns %s: %w", ns, err)
		}
		var d net.Dialer
		c, derr := d.DialContext(ctx, network, addr)
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and dies with the goroutine's end
		return c, derr
	}
}

// nsHTTPClient is an HTTP client whose connections start in ns.
func nsHTTPClient(ns string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: netnsDialer(ns), DisableKeepAlives: true,
	}}
}

// runNamespace matches the names of the namespaces runs make: vpv- and the
// run's 6 hex digits (the unit test's are vpv-t..., not a run's).
var runNamespace = regexp.MustCompile(`^` + nsPrefix + `[0-9a-f]{6}$`)

// cleanLeftovers removes what a killed earlier run left: every namespace
// named like a run's (vpv-<6 hex>), after ending the processes in it (qemu,
// the host peer, ssh) by PID.
func cleanLeftovers() error {
	out, err := cmdOut("ip", "netns", "list")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !runNamespace.MatchString(f[0]) {
			continue
		}
		ns := f[0]
		fmt.Printf("removing namespace %s left by an earlier run\n", ns)
		killNamespace(ns)
		if _, err := cmdOut("ip", "netns", "del", ns); err != nil {
			return err
		}
	}
	return nil
}

// killNamespace ends every process in ns: SIGTERM, up to 10 s, SIGKILL.
func killNamespace(ns string) {
	pids := func() []int {
		out, _ := cmdOut("ip", "netns", "pids", ns)
		var ps []int
		for _, f := range strings.Fields(out) {
			if p, err := strconv.Atoi(f); err == nil && p > 1 && p != os.Getpid() {
				ps = append(ps, p)
			}
		}
		return ps
	}
	for _, p := range pids() {
		fmt.Printf("  SIGTERM %d (%s)\n", p, comm(p))
		syscall.Kill(p, syscall.SIGTERM)
	}
	for i := 0; i < 100 && len(pids()) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range pids() {
		fmt.Printf("  SIGKILL %d (%s)\n", p, comm(p))
		syscall.Kill(p, syscall.SIGKILL)
	}
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
