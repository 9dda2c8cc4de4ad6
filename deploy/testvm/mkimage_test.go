package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mirror runs mkimage.sh --mirror against the given apt files.
func mirror(t *testing.T, sources, list string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	sp, lp := filepath.Join(dir, "debian.sources"), filepath.Join(dir, "sources.list")
	if sources != "" {
		os.WriteFile(sp, []byte(sources), 0o644)
	}
	if list != "" {
		os.WriteFile(lp, []byte(list), 0o644)
	}
	c := exec.Command("bash", "mkimage.sh", "--mirror")
	c.Env = append(os.Environ(), "VARPAR_APT_SOURCES="+sp, "VARPAR_APT_LIST="+lp)
	out, err := c.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestMirrorFromAptConfig(t *testing.T) {
	deb822 := "Types: deb\nURIs: http://mirror.test/sec\nSuites: bookworm-security\nComponents: main\n\n" +
		"Types: deb-src\nURIs: http://mirror.test/src\nSuites: bookworm\n\n" +
		"Types: deb\n# a comment\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
	if m, err := mirror(t, deb822, ""); err != nil || m != "http://mirror.test/debian" {
		t.Errorf("deb822: got %q, %v", m, err)
	}
	list := "# x\ndeb-src http://a.test/d bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://b.test/debian bookworm main\n"
	if m, err := mirror(t, "", list); err != nil || m != "http://b.test/debian" {
		t.Errorf("sources.list: got %q, %v", m, err)
	}
	// A deb822 file without bookworm falls back to sources.list.
	if m, err := mirror(t, "Types: deb\nURIs: http://c.test/x\nSuites: trixie\n", "deb http://d.test/debian bookworm main\n"); err != nil || m != "http://d.test/debian" {
		t.Errorf("fallback: got %q, %v", m, err)
	}
	m, err := mirror(t, "Types: deb\nURIs: http://c.test/x\nSuites: trixie\n", "")
	if err == nil || !strings.Contains(m, "no Debian bookworm mirror") {
		t.Errorf("no mirror: want a clear error, got %q, %v", m, err)
	}
}

func TestMkimageRejectsABadAddress(t *testing.T) {
	out, err := exec.Command("bash", "mkimage.sh", t.TempDir(), "10.0.0.2/24").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a CIDR in 198.18.0.0/15") {
		t.Fatalf("got %s, %v", out, err)
	}
}
