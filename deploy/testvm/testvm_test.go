package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	v, err := parseVersion("varpar v1.2.3-4-gabc\ngo1.26 linux/amd64\n")
	if err != nil || v != "v1.2.3-4-gabc" {
		t.Fatalf("got %q, %v", v, err)
	}
	for _, bad := range []string{"", "1.2.3", "other 1.2"} {
		if _, err := parseVersion(bad); err == nil || !strings.Contains(err.Error(), "varpar <version>") {
			t.Errorf("%q: want an error naming the expected form, got %v", bad, err)
		}
	}
}

func TestClassifyDeparture(t *testing.T) {
	left := `{"level":"info","member":"vm-arm64","addr":"198.19.11.2:7946","message":"gossip: member left"}`
	failed := `{"level":"warn","member":"vm-arm64","addr":"198.19.11.2:7946","message":"gossip: member failed"}`
	other := `{"level":"info","member":"vm-arm64x","message":"gossip: member left"}`
	cases := []struct {
		log, kind string
	}{
		{left, "left"},
		{failed, "failed"},
		{left + "\n" + failed, "failed"}, // the detector fired: not graceful
		{other, "unknown"},               // another member
		{"", "unknown"},
		{"12:00:01 INF gossip: member left member=vm-arm64 addr=198.19.11.2:7946", "left"},
	}
	for i, c := range cases {
		if k, line := classifyDeparture(c.log, "vm-arm64"); k != c.kind || (k != "unknown" && line == "") {
			t.Errorf("case %d: got %q %q, want %q", i, k, line, c.kind)
		}
	}
}

func TestCheckHardening(t *testing.T) {
	good := parseShow("User=varpar\nNoNewPrivileges=yes\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nReadWritePaths=/var/lib/varpar\nRestart=on-failure\n")
	if err := checkHardening(good, "/var/lib/varpar"); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"User": "root", "NoNewPrivileges": "no", "ProtectSystem": "full",
		"ProtectHome": "no", "PrivateTmp": "no", "ReadWritePaths": "/tmp", "Restart": "no"} {
		p := map[string]string{}
		for a, b := range good {
			p[a] = b
		}
		p[k] = v
		err := checkHardening(p, "/var/lib/varpar")
		if err == nil || !strings.Contains(err.Error(), k+"=") {
			t.Errorf("%s=%s: want an error naming %s, got %v", k, v, k, err)
		}
	}
	if err := checkHardening(map[string]string{}, "/var/lib/varpar"); err == nil {
		t.Error("an empty show output passed")
	}
}

func TestParseShow(t *testing.T) {
	p := parseShow("User=varpar\nReadWritePaths=/a /b\n\nbroken\nExecStart={ path=/x ; argv[]=/x a=b }\n")
	if p["User"] != "varpar" || p["ReadWritePaths"] != "/a /b" || len(p) != 3 || !strings.Contains(p["ExecStart"], "a=b") {
		t.Fatalf("got %v", p)
	}
}

func TestInventoryHasTheSharedVariables(t *testing.T) {
	r := &runner{o: options{release: "/r", family: "/f"}, work: "/w", key: "/w/id", version: "v9"}
	inv := r.inventory()
	for _, want := range []string{"varpar:", "ansible_host: " + guestAddr, "varpar_service_manager: systemd",
		`varpar_release_dir: "/r"`, `varpar_version: "v9"`, `varpar_family_dir: "/f"`, `varpar_cluster_key_file: "/w/cluster.key"`,
		`varpar_api_token_file: "/w/api.token"`, "varpar_node_name: " + vmName, "varpar_advertise_addr: " + guestAddr,
		`- "` + hostAddr + `:7946"`} {
		if !strings.Contains(inv, want) {
			t.Errorf("inventory lacks %q:\n%s", want, inv)
		}
	}
}

func TestSummaryWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	s := &summary{Result: "pass", Stages: []Stage{{Name: "boot to ssh", Seconds: 12.5, OK: true}}, TotalSeconds: 13,
		Stop: &Departure{Seconds: 0.4, Kind: "left"}}
	if err := s.write(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Result != "pass" || len(back.Stages) != 1 || back.Stop == nil || back.Stop.Kind != "left" {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestRunNamespace(t *testing.T) {
	for name, want := range map[string]bool{"vpv-0a1b2c": true, "vpv-t0a1b2c": false, "vpv-0a1b2": false,
		"vpv-0A1B2C": false, "varpar-chaos-0a1b-p1": false, "xvpv-0a1b2c": false} {
		if runNamespace.MatchString(name) != want {
			t.Errorf("%s: want %v", name, want)
		}
	}
}
