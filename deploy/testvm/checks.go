package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// dataDir is where the role keeps the peer's data (its default).
const dataDir = "/var/lib/varpar"

func (r *runner) unit(ctx context.Context) (string, error) {
	out, err := r.ssh(ctx, time.Minute, "systemctl is-active varpar; systemctl is-enabled varpar")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "active" || f[1] != "enabled" {
		return "", fmt.Errorf("systemctl is-active/is-enabled varpar: %q (want active, enabled; %v)", strings.TrimSpace(out), err)
	}
	out, err = r.ssh(ctx, time.Minute, "systemctl show varpar -p "+strings.Join(hardeningProps, ",")+",FragmentPath,MainPID")
	if err != nil {
		return "", err
	}
	props := parseShow(out)
	r.s.Hardening = map[string]string{}
	for _, k := range hardeningProps {
		r.s.Hardening[k] = props[k]
	}
	fmt.Print(out)
	if err := checkHardening(props, dataDir); err != nil {
		return "", err
	}
	// The process really runs as the unit's user.
	pu, err := r.ssh(ctx, time.Minute, "ps -o user= -p "+props["MainPID"])
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(pu) != props["User"] {
		return "", fmt.Errorf("main pid %s runs as %q, the unit says User=%s", props["MainPID"], strings.TrimSpace(pu), props["User"])
	}
	frag := props["FragmentPath"]
	if frag == "" {
		return "", fmt.Errorf("systemctl show varpar: no FragmentPath")
	}
	vout, err := r.ssh(ctx, 3*time.Minute, "systemd-analyze verify "+frag+" 2>&1")
	r.s.Verify = strings.TrimSpace(vout)
	if err != nil {
		return "", fmt.Errorf("systemd-analyze verify %s: %w", frag, err)
	}
	return fmt.Sprintf("active, enabled, User=%s; systemd-analyze verify %s: clean%s", props["User"], frag, prefixed(" (", r.s.Verify, ")")), nil
}

// listed polls the host peer's view until member's presence is want, up to
// limit, every 100 ms; it returns when that happened.
func (r *runner) listed(ctx context.Context, want bool, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if r.peer.exited() {
			return time.Time{}, fmt.Errorf("host peer exited: %v\n%s", r.peer.err, tail(r.peerLog, 20))
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		cv, err := r.hostAPI.Cluster(cctx)
		cancel()
		if err == nil && cv.HasMember(vmName) == want {
			if want {
				for _, m := range cv.Members {
					if m.Name == vmName && m.Version != "" && m.Version != r.version {
						return time.Time{}, fmt.Errorf("%s runs version %q, want %q", vmName, m.Version, r.version)
					}
				}
			}
			return time.Now(), nil
		}
		last = err
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
	verb := "listed"
	if !want {
		verb = "gone"
	}
	return time.Time{}, fmt.Errorf("%s not %s in %s's view within %v (last error %v)", vmName, verb, hostName, limit, last)
}

func (r *runner) join(ctx context.Context) (string, error) {
	t := time.Now()
	at, err := r.listed(ctx, true, r.o.joinWait)
	if err != nil {
		out, _ := r.ssh(ctx, time.Minute, "journalctl -u varpar -n 30 --no-pager")
		return "", fmt.Errorf("%w\nVM journal:\n%s", err, out)
	}
	r.s.JoinSeconds = secs(at.Sub(t))
	return fmt.Sprintf("%s listed by %s %.1f s after the playbook", vmName, hostName, r.s.JoinSeconds), nil
}

// logSize is the host peer's log length now, to read what comes after.
func (r *runner) logSize() int64 {
	st, err := os.Stat(r.peerLog)
	if err != nil {
		return 0
	}
	return st.Size()
}

func (r *runner) logSince(off int64) string {
	b, _ := os.ReadFile(r.peerLog)
	if off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// departure waits until the VM is gone from the host peer's view and says
// how it went, from the log written since off.
func (r *runner) departure(ctx context.Context, t time.Time, off int64, limit time.Duration) (*Departure, error) {
	at, err := r.listed(ctx, false, limit)
	if err != nil {
		return nil, err
	}
	d := &Departure{Seconds: secs(at.Sub(t))}
	// The log line is written when the view changes, give it a moment.
	for i := 0; i < 20; i++ {
		if d.Kind, d.LogLine = classifyDeparture(r.logSince(off), vmName); d.Kind != "unknown" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d, nil
}

func (r *runner) stopLeaves(ctx context.Context) (string, error) {
	off, t := r.logSize(), time.Now()
	// The stop runs while the host peer's view is polled, so that the
	// time to leave is measured from the command, not from its end.
	type result struct {
		took time.Duration
		err  error
	}
	stopDone := make(chan result, 1)
	go func() {
		_, err := r.ssh(ctx, 2*time.Minute, "systemctl stop varpar")
		stopDone <- result{time.Since(t), err}
	}()
	d, derr := r.departure(ctx, t, off, time.Minute)
	res := <-stopDone
	if res.err != nil {
		return "", res.err
	}
	if derr != nil {
		return "", derr
	}
	stopped := secs(res.took)
	r.s.Stop = d
	state, _ := r.ssh(ctx, time.Minute, "systemctl is-active varpar; journalctl -u varpar -n 5 --no-pager -o cat")
	detail := fmt.Sprintf("systemctl stop took %.1f s; gone from %s's view %.1f s after the command was sent; %s: %s; guest: %s",
		stopped, hostName, d.Seconds, d.Kind, d.LogLine, strings.Join(strings.Fields(state), " "))
	if d.Kind != "left" {
		return detail, fmt.Errorf("the peer did not leave gracefully: the host peer's log says %q (%s)", d.Kind, d.LogLine)
	}
	if f := strings.Fields(state); len(f) == 0 || f[0] != "inactive" {
		return detail, fmt.Errorf("after systemctl stop the unit is %q, want inactive (a clean exit)", strings.TrimSpace(state))
	}
	return detail, nil
}

func (r *runner) startRejoins(ctx context.Context) (string, error) {
	t := time.Now()
	if _, err := r.ssh(ctx, 2*time.Minute, "systemctl start varpar"); err != nil {
		return "", err
	}
	at, err := r.listed(ctx, true, r.o.joinWait)
	if err != nil {
		return "", err
	}
	r.s.StartSeconds = secs(at.Sub(t))
	return fmt.Sprintf("listed again %.1f s after systemctl start", r.s.StartSeconds), nil
}

func (r *runner) reboot(ctx context.Context) (string, error) {
	boot, err := r.ssh(ctx, time.Minute, "cat /proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	boot = strings.TrimSpace(boot)
	off, t := r.logSize(), time.Now()
	// The connection may drop as the guest goes down: not an error.
	r.ssh(ctx, time.Minute, "systemctl reboot")
	d, err := r.departure(ctx, t, off, 5*time.Minute)
	if err != nil {
		return "", err
	}
	r.s.Reboot = d
	if err := r.waitSSH(ctx, boot); err != nil {
		return "", err
	}
	up := secs(time.Since(t))
	at, err := r.listed(ctx, true, r.o.joinWait)
	if err != nil {
		out, _ := r.ssh(ctx, time.Minute, "systemctl status varpar --no-pager; journalctl -b -u varpar -n 30 --no-pager")
		return "", fmt.Errorf("%w\nVM:\n%s", err, out)
	}
	r.s.RejoinSecs = secs(at.Sub(t))
	state, _ := r.ssh(ctx, time.Minute, "systemctl is-active varpar")
	detail := fmt.Sprintf("left %.1f s after the reboot command (%s); ssh back after %.0f s; listed again after %.0f s; unit %s",
		d.Seconds, d.Kind, up, r.s.RejoinSecs, strings.TrimSpace(state))
	if strings.TrimSpace(state) != "active" {
		return detail, fmt.Errorf("after the reboot the unit is %q", strings.TrimSpace(state))
	}
	if d.Kind != "left" {
		return detail, fmt.Errorf("at shutdown the peer did not leave gracefully (%s: %s)", d.Kind, d.LogLine)
	}
	return detail, nil
}

func (r *runner) poweroff(ctx context.Context) (string, error) {
	r.ssh(ctx, time.Minute, "systemctl poweroff")
	select {
	case <-r.qemu.done:
		return "qemu exited", nil
	case <-time.After(3 * time.Minute):
		return "", fmt.Errorf("qemu still running 3 min after poweroff")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// teardown ends everything the run started, whatever happened: qemu and
// the host peer by PID, the namespace (and the tap with it), the run's
// folder (logs are copied to --out first).
func (r *runner) teardown() {
	r.qemu.stop(15 * time.Second)
	r.peer.stop(15 * time.Second)
	if r.ns != "" {
		killNamespace(r.ns) // anything else still in it (ssh)
		if _, err := cmdOut("ip", "netns", "del", r.ns); err != nil {
			fmt.Fprintln(os.Stderr, "testvm: teardown:", err)
		}
	}
	if r.work != "" {
		os.MkdirAll(r.o.out, 0o755)
		for _, f := range []string{"console.log", "qemu.log", "host-peer.log", "ansible.log", "inventory.yml"} {
			if b, err := os.ReadFile(filepath.Join(r.work, f)); err == nil {
				os.WriteFile(filepath.Join(r.o.out, f), b, 0o644)
			}
		}
		if !r.o.keep {
			os.RemoveAll(r.work)
		} else {
			fmt.Printf("kept %s\n", r.work)
		}
	}
	if r.lock != nil {
		r.lock.Close()
	}
}
