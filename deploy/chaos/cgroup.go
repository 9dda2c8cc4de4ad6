package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cpuRoot is where the cgroup v1 cpu controller is mounted.
const cpuRoot = "/sys/fs/cgroup/cpu"

// CPUQuota is a cgroup v1 cpu group that holds one process at a fraction
// of one core (a slow device).
type CPUQuota struct {
	dir  string
	from string // the process's cpu group before, to move it back to
	pid  int
}

// cpuGroupOf is pid's group of the cpu controller, from /proc/PID/cgroup.
func cpuGroupOf(pid int) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 4:cpu,cpuacct:/user.slice or 3:cpu:/
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ",cpu,") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("chaos: pid %d is in no cgroup v1 cpu group", pid)
}

// LimitCPU moves pid into a new group named name allowed percent of one
// core.
func LimitCPU(name string, pid, percent int) (*CPUQuota, error) {
	if _, err := os.Stat(filepath.Join(cpuRoot, "cpu.cfs_quota_us")); err != nil {
		return nil, fmt.Errorf("chaos: no cgroup v1 cpu controller at %s: %w", cpuRoot, err)
	}
	from, err := cpuGroupOf(pid)
	if err != nil {
		return nil, err
	}
	q := &CPUQuota{dir: filepath.Join(cpuRoot, name), from: filepath.Join(cpuRoot, from), pid: pid}
	if err := os.Mkdir(q.dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	for _, w := range []struct{ file, val string }{
		{"cpu.cfs_period_us", "100000"},
		{"cpu.cfs_quota_us", strconv.Itoa(percent * 1000)},
		{"cgroup.procs", strconv.Itoa(pid)},
	} {
		if err := os.WriteFile(filepath.Join(q.dir, w.file), []byte(w.val), 0o644); err != nil {
			q.Release()
			return nil, fmt.Errorf("chaos: %s: %w", w.file, err)
		}
	}
	return q, nil
}

// Release moves the process back (if it still runs) and removes the group.
func (q *CPUQuota) Release() error {
	if q == nil {
		return nil
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", q.pid)); err == nil {
		os.WriteFile(filepath.Join(q.from, "cgroup.procs"), []byte(strconv.Itoa(q.pid)), 0o644)
	}
	// A killed process may take a moment to leave the group's task list.
	var err error
	for range 50 {
		if err = os.Remove(q.dir); err == nil {
			return nil
		}
		waitBriefly()
	}
	return fmt.Errorf("chaos: rmdir %s: %w", q.dir, err)
}
