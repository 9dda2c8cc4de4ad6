package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// summary is summary.json.
type summary struct {
	Result       string            `json:"result"` // pass, fail or skip
	Error        string            `json:"error,omitempty"`
	Version      string            `json:"version,omitempty"`
	Arch         string            `json:"arch,omitempty"`
	Networking   string            `json:"networking,omitempty"`
	Stages       []Stage           `json:"stages"`
	TotalSeconds float64           `json:"total_seconds"`
	BootSeconds  float64           `json:"boot_seconds,omitempty"`          // qemu start to ssh answering
	JoinSeconds  float64           `json:"join_seconds,omitempty"`          // playbook end to the host peer listing the VM
	Hardening    map[string]string `json:"hardening,omitempty"`             // systemctl show varpar
	Stop         *Departure        `json:"stop,omitempty"`                  // systemctl stop varpar
	StartSeconds float64           `json:"start_seconds,omitempty"`         // systemctl start to listed again
	Reboot       *Departure        `json:"reboot,omitempty"`                // the shutdown half of the reboot
	RejoinSecs   float64           `json:"reboot_rejoin_seconds,omitempty"` // reboot command to listed again
	Verify       string            `json:"systemd_analyze_verify,omitempty"`
}

// Stage is one timed step.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	OK      bool    `json:"ok"`
	Detail  string  `json:"detail,omitempty"`
	Error   string  `json:"error,omitempty"`
}

// Departure is how the VM peer left the host peer's view.
type Departure struct {
	Seconds float64 `json:"seconds"` // command to gone from the host peer's /v1/cluster
	Kind    string  `json:"kind"`    // left (graceful), failed (failure detector) or unknown
	LogLine string  `json:"log_line,omitempty"`
}

func (s *summary) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "summary.json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("summary: %s\n", p)
	return nil
}

// classifyDeparture finds, in the host peer's log written since the
// command, the line saying how member went: "gossip: member left" (it said
// goodbye) or "gossip: member failed" (the failure detector gave up on it).
// A failed line wins over a left one: a leave that came after the detector
// is not graceful.
func classifyDeparture(log, member string) (kind, line string) {
	kind = "unknown"
	for _, l := range strings.Split(log, "\n") {
		if !mentionsMember(l, member) {
			continue
		}
		switch {
		case strings.Contains(l, "gossip: member failed"):
			return "failed", strings.TrimSpace(l)
		case strings.Contains(l, "gossip: member left") && kind == "unknown":
			kind, line = "left", strings.TrimSpace(l)
		}
	}
	return kind, line
}

// mentionsMember reports whether a log line (JSON or console) names member
// as its member field.
func mentionsMember(l, member string) bool {
	return strings.Contains(l, `"member":"`+member+`"`) || strings.Contains(l, "member="+member) ||
		strings.Contains(l, `member="`+member+`"`)
}

// hardeningWant is what the unit must show (systemctl show -p ...).
var hardeningProps = []string{"User", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "Restart"}

// parseShow reads systemctl show's KEY=VALUE lines.
func parseShow(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// checkHardening says what of the hardening the unit lacks, naming
// each property; dataDir must be among ReadWritePaths.
func checkHardening(p map[string]string, dataDir string) error {
	var bad []string
	want := func(k string, ok bool, need string) {
		if !ok {
			bad = append(bad, fmt.Sprintf("%s=%q (want %s)", k, p[k], need))
		}
	}
	u := p["User"]
	want("User", u != "" && u != "root" && u != "0", "its own user, not root")
	want("NoNewPrivileges", p["NoNewPrivileges"] == "yes", "yes")
	want("ProtectSystem", p["ProtectSystem"] == "strict", "strict")
	want("ProtectHome", p["ProtectHome"] == "yes" || p["ProtectHome"] == "read-only" || p["ProtectHome"] == "tmpfs", "yes, read-only or tmpfs")
	want("PrivateTmp", p["PrivateTmp"] == "yes", "yes")
	rw := strings.Fields(p["ReadWritePaths"])
	hasData := false
	for _, x := range rw {
		if strings.TrimPrefix(strings.TrimPrefix(x, "-"), "+") == dataDir || dataDir == "" {
			hasData = true
		}
	}
	want("ReadWritePaths", len(rw) > 0 && hasData, "the data dir "+dataDir)
	want("Restart", p["Restart"] == "on-failure" || p["Restart"] == "always" || p["Restart"] == "on-abnormal", "on-failure")
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("unit hardening: %s", strings.Join(bad, "; "))
	}
	return nil
}
