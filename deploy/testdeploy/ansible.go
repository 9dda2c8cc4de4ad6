package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Recap is one host's line of ansible-playbook's PLAY RECAP.
type Recap struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Unreachable int `json:"unreachable"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
	Rescued     int `json:"rescued"`
	Ignored     int `json:"ignored"`
}

// ParseRecap reads the PLAY RECAP of ansible-playbook's output: host → its
// counts. It fails when there is no recap or a line of it does not parse.
func ParseRecap(out string) (map[string]Recap, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	in := false
	var recaps map[string]Recap
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "PLAY RECAP") {
			in, recaps = true, map[string]Recap{} // the last recap wins
			continue
		}
		if !in {
			continue
		}
		if l == "" {
			in = false
			continue
		}
		host, counts, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("PLAY RECAP: line %q has no host", l)
		}
		var r Recap
		fields := map[string]*int{"ok": &r.OK, "changed": &r.Changed, "unreachable": &r.Unreachable, "failed": &r.Failed, "skipped": &r.Skipped, "rescued": &r.Rescued, "ignored": &r.Ignored}
		seen := 0
		for _, f := range strings.Fields(counts) {
			k, v, ok := strings.Cut(f, "=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				return nil, fmt.Errorf("PLAY RECAP: %q in line %q is not name=count", f, l)
			}
			if p, ok := fields[k]; ok {
				*p = n
				seen++
			}
		}
		if seen < 4 {
			return nil, fmt.Errorf("PLAY RECAP: line %q lacks ok/changed/unreachable/failed", l)
		}
		recaps[strings.TrimSpace(host)] = r
	}
	if recaps == nil {
		return nil, fmt.Errorf("no PLAY RECAP in ansible-playbook's output")
	}
	return recaps, nil
}

// checkRecaps records a failure for every host missing from the recap,
// unreachable or failed, and with noChange for every host that changed.
func checkRecaps(s *Summary, run string, recaps map[string]Recap, hosts []*Host, noChange bool) {
	for _, h := range hosts {
		r, ok := recaps[h.Name]
		switch {
		case !ok:
			s.fail("%s: %s is not in the PLAY RECAP", run, h.Name)
		case r.Unreachable > 0 || r.Failed > 0:
			s.fail("%s: %s unreachable=%d failed=%d", run, h.Name, r.Unreachable, r.Failed)
		case noChange && r.Changed != 0:
			s.fail("%s: %s changed=%d, want 0", run, h.Name, r.Changed)
		}
	}
}

// Inventory is the YAML inventory of the hosts: group varpar, ssh as root
// with the run's key and known_hosts, and vars (JSON values are YAML).
func (e *Env) Inventory(vars map[string]any) string {
	var b strings.Builder
	q := func(v any) string {
		j, _ := json.Marshal(v)
		return string(j)
	}
	b.WriteString("# Written by deploy/testdeploy for one run; the hosts are gone after it.\nall:\n  children:\n    varpar:\n      hosts:\n")
	for _, h := range e.Hosts {
		fmt.Fprintf(&b, "        %s:\n          ansible_host: %s\n          varpar_node_name: %s\n          varpar_advertise_addr: %s\n",
			h.Name, q(h.Addr.String()), q(h.Name), q(h.Addr.String()))
	}
	b.WriteString("      vars:\n")
	common := map[string]any{
		"ansible_user":                 "root",
		"ansible_ssh_private_key_file": e.Key,
		"ansible_ssh_common_args":      "-o UserKnownHostsFile=" + e.Known + " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
		"ansible_python_interpreter":   "/usr/bin/python3",
	}
	for k, v := range vars {
		common[k] = v
	}
	for _, k := range sortedKeys(common) {
		fmt.Fprintf(&b, "        %s: %s\n", k, q(common[k]))
	}
	return b.String()
}

// Playbook runs ansible-playbook (in dir, for its ansible.cfg, when not "")
// and returns the recap and output; the output is also in logs/NAME.log.
func (e *Env) Playbook(ctx context.Context, dir, inventory, playbook, name string, extra []string) (map[string]Recap, string, error) {
	inv, err := filepath.Abs(inventory)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	args := append([]string{"-i", inv, playbook}, extra...)
	cmd := exec.CommandContext(ctx, "ansible-playbook", args...)
	cmd.Dir = dir
	cp := filepath.Join(e.Ctl, "cp")
	os.MkdirAll(cp, 0o700)
	cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_SSH_CONTROL_PATH_DIR="+cp, "ANSIBLE_RETRY_FILES_ENABLED=0")
	logf("ansible-playbook %s (log %s/%s.log)", strings.Join(args, " "), e.LogDir, name)
	// The log is written as ansible goes, to follow a long run.
	logFile, err := os.Create(filepath.Join(e.LogDir, name+".log"))
	if err != nil {
		return nil, "", err
	}
	defer logFile.Close()
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, logFile)
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	out := buf.Bytes()
	recaps, perr := ParseRecap(string(out))
	if perr != nil {
		if err != nil {
			return nil, string(out), fmt.Errorf("ansible-playbook %s: %w: %s", playbook, err, tail(out, 25))
		}
		return nil, string(out), perr
	}
	if err != nil {
		logf("ansible-playbook %s: %v (the recap says which hosts failed): %s", playbook, err, tail(out, 25))
	}
	return recaps, string(out), nil
}
