package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/varpar/varpar/peer/api"
)

func TestMirror(t *testing.T) {
	deb822 := `Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
`
	if m, err := Mirror(deb822, ""); err != nil || m != "http://mirror.invalid/debian" {
		t.Fatalf("deb822: %q, %v", m, err)
	}
	// Only the security stanza: fall back to sources.list.
	onlySec := strings.SplitN(deb822, "\n\n", 2)[1]
	list := "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://list.invalid/debian bookworm main\n"
	if m, err := Mirror(onlySec, list); err != nil || m != "http://list.invalid/debian" {
		t.Fatalf("fallback: %q, %v", m, err)
	}
	if m, err := Mirror("", "deb http://plain.invalid/debian bookworm main\n"); err != nil || m != "http://plain.invalid/debian" {
		t.Fatalf("plain list: %q, %v", m, err)
	}
	if _, err := Mirror("", "deb http://old.invalid/debian bullseye main\n"); err == nil || !strings.Contains(err.Error(), "no Debian mirror") {
		t.Fatalf("no bookworm: %v", err)
	}
}

func TestStampChangesWithInclude(t *testing.T) {
	a := Stamp("arm64")
	old := Include
	defer func() { Include = old }()
	Include = append(append([]string{}, old...), "extra")
	if Stamp("arm64") == a {
		t.Fatal("the stamp does not change with the include list")
	}
	if Stamp("amd64") == a {
		t.Fatal("the stamp does not name the arch")
	}
}

func TestCheckBinfmt(t *testing.T) {
	ok := "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n"
	if err := checkBinfmt(ok); err != nil {
		t.Fatal(err)
	}
	if err := checkBinfmt("enabled\nflags: P\n"); err == nil || !strings.Contains(err.Error(), "F flag") {
		t.Fatalf("no F: %v", err)
	}
	if err := checkBinfmt("disabled\nflags: F\n"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled: %v", err)
	}
}

const recapOut = `PLAY [varpar] ******

TASK [Gathering Facts] ******
ok: [h1]

PLAY RECAP *********************************************************************
h1                         : ok=12   changed=3    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0
h3                         : ok=11   changed=0    unreachable=0    failed=1    skipped=2    rescued=0    ignored=0

`

func TestParseRecap(t *testing.T) {
	r, err := ParseRecap(recapOut)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 2 || r["h1"].OK != 12 || r["h1"].Changed != 3 || r["h3"].Failed != 1 || r["h1"].Skipped != 2 {
		t.Fatalf("%+v", r)
	}
	if _, err := ParseRecap("PLAY [x]\nfatal: nothing\n"); err == nil {
		t.Fatal("no recap: no error")
	}
	if _, err := ParseRecap("PLAY RECAP ***\nh1 : ok=x changed=0\n"); err == nil {
		t.Fatal("bad count: no error")
	}
	hosts := []*Host{{Name: "h1"}, {Name: "h2"}, {Name: "h3"}}
	s := &Summary{}
	checkRecaps(s, "site", r, hosts, true)
	want := []string{"site: h1 changed=3, want 0", "site: h2 is not in the PLAY RECAP", "site: h3 unreachable=0 failed=1"}
	if fmt.Sprint(s.Failures) != fmt.Sprint(want) {
		t.Fatalf("failures %q, want %q", s.Failures, want)
	}
	s = &Summary{}
	checkRecaps(s, "site", map[string]Recap{"h1": {OK: 3}, "h2": {OK: 3, Changed: 1}, "h3": {OK: 1}}, hosts, false)
	if len(s.Failures) != 0 {
		t.Fatalf("changes allowed: %q", s.Failures)
	}
}

func TestOwnNames(t *testing.T) {
	got := ownNames([]string{"vpd-1a2b-h1", "vpd-1a2b-br", "vpd-zzzz-h1", "vpd-", "varpar-chaos-1a2b-p1", "vpd-abcd", "eth0", "vpd-00ff-ctl"})
	if fmt.Sprint(got) != "[vpd-1a2b-h1 vpd-1a2b-br vpd-00ff-ctl]" {
		t.Fatalf("%q", got)
	}
}

func TestMountsUnder(t *testing.T) {
	mi := `22 1 0:21 / / rw - ext4 /dev/vda rw
30 22 0:40 / /c/hosts/vpd-1a2b-h1/root rw - overlay overlay rw
31 30 0:5 / /c/hosts/vpd-1a2b-h1/root/proc rw - proc proc rw
32 30 0:6 / /c/hosts/vpd-1a2b-h1/root/my\040dir rw - tmpfs tmpfs rw
33 22 0:7 / /c/hostsX rw - tmpfs tmpfs rw
`
	got := mountsUnder(mi, "/c/hosts")
	want := []string{"/c/hosts/vpd-1a2b-h1/root/my dir", "/c/hosts/vpd-1a2b-h1/root/proc", "/c/hosts/vpd-1a2b-h1/root"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestInventoryIsYAML(t *testing.T) {
	e := &Env{Key: "/k/id_ed25519", Known: "/k/known_hosts", Hosts: []*Host{
		{Name: "h1", Addr: netip.MustParseAddr("198.18.7.1")}, {Name: "h2", Addr: netip.MustParseAddr("198.18.7.2")}}}
	inv := e.Inventory(map[string]any{"varpar_seeds": []string{"198.18.7.1:7946"}, "varpar_service_manager": "direct", "odd": "a: b # c"})
	var doc struct {
		All struct {
			Children struct {
				Varpar struct {
					Hosts map[string]map[string]string `yaml:"hosts"`
					Vars  map[string]any               `yaml:"vars"`
				} `yaml:"varpar"`
			} `yaml:"children"`
		} `yaml:"all"`
	}
	if err := yaml.Unmarshal([]byte(inv), &doc); err != nil {
		t.Fatalf("%v\n%s", err, inv)
	}
	g := doc.All.Children.Varpar
	if g.Hosts["h2"]["ansible_host"] != "198.18.7.2" || g.Hosts["h1"]["varpar_node_name"] != "h1" || g.Hosts["h2"]["varpar_advertise_addr"] != "198.18.7.2" {
		t.Fatalf("hosts %+v", g.Hosts)
	}
	if g.Vars["odd"] != "a: b # c" || g.Vars["varpar_service_manager"] != "direct" || fmt.Sprint(g.Vars["varpar_seeds"]) != "[198.18.7.1:7946]" || g.Vars["ansible_user"] != "root" {
		t.Fatalf("vars %+v", g.Vars)
	}
	if !strings.Contains(fmt.Sprint(g.Vars["ansible_ssh_common_args"]), "UserKnownHostsFile=/k/known_hosts") {
		t.Fatalf("ssh args %v", g.Vars["ansible_ssh_common_args"])
	}
}

func TestVarsFlag(t *testing.T) {
	v := varsFlag{}
	for _, s := range []string{"a=8080", "b=hello", `c=["x","y"]`, "d="} {
		if err := v.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if v["a"] != float64(8080) || v["b"] != "hello" || fmt.Sprint(v["c"]) != "[x y]" || v["d"] != "" {
		t.Fatalf("%#v", v)
	}
	if err := v.Set("novalue"); err == nil {
		t.Fatal("no = : no error")
	}
}

func TestParseFusedAndLoad(t *testing.T) {
	if f, err := parseFused([]byte(`{"variants":[],"fused":0.88,"subsets":[]}`)); err != nil || f != 0.88 {
		t.Fatalf("%v %v", f, err)
	}
	for _, bad := range []string{`{}`, `{"fused":0}`, `{"fused":1.5}`, `nope`} {
		if _, err := parseFused([]byte(bad)); err == nil {
			t.Fatalf("%s: no error", bad)
		}
	}
	r, err := parseLoad([]byte(`{"requests":100,"sent":98,"dropped":2,"successes":95,"errors":{"timeout":3},"accuracy":0.9}` + "\n"))
	if err != nil || r.Failed() != 5 || *r.Accuracy != 0.9 {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := parseLoad([]byte(`{"requests":0}`)); err == nil {
		t.Fatal("empty report: no error")
	}
}

func TestCheckView(t *testing.T) {
	hosts := []*Host{{Name: "h1"}, {Name: "h2"}}
	cv := &api.ClusterView{Members: []api.MemberInfo{{Name: "h1", Version: "v2"}, {Name: "h2", Version: "v1"}}}
	if err := checkView(cv, hosts, ""); err != nil {
		t.Fatal(err)
	}
	if err := checkView(cv, hosts, "v2"); err == nil || !strings.Contains(err.Error(), "h2 runs version") {
		t.Fatalf("old version: %v", err)
	}
	cv.Members = cv.Members[:1]
	if err := checkView(cv, hosts, ""); err == nil || !strings.Contains(err.Error(), "h2 is not a member") {
		t.Fatalf("missing member: %v", err)
	}
}

func TestSubsetTar(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "test.tar.gz")
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "test/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, c := range []string{"cat", "dog", "ship"} {
		for i := range 4 {
			data := []byte(c + fmt.Sprint(i))
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("test/%s/%04d.jpg", c, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
			tw.Write(data)
		}
	}
	tw.Close()
	gz.Close()
	os.WriteFile(src, buf.Bytes(), 0o644)
	dst := filepath.Join(dir, "out.tar")
	if err := subsetTar(src, dst, 7); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(dst)
	defer f.Close()
	tr := tar.NewReader(f)
	per := map[string]int{}
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		class := filepath.Base(filepath.Dir(h.Name))
		if !strings.HasPrefix(string(b), class) {
			t.Fatalf("%s holds %q", h.Name, b)
		}
		per[class]++
		n++
	}
	if n != 7 || per["cat"] < 2 || per["dog"] < 2 || per["ship"] < 2 {
		t.Fatalf("%d images, per class %v", n, per)
	}
	if err := subsetTar(src, dst, 13); err == nil || !strings.Contains(err.Error(), "only 12 images") {
		t.Fatalf("too many: %v", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	good := Options{Archs: []string{"amd64", "arm64"}, Stages: "all", PerHost: 50, Margin: 0.1, Rate: 4}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*Options){
		func(o *Options) { o.Archs = []string{"amd64", "riscv64"} },
		func(o *Options) { o.Stages = "some" },
		func(o *Options) { o.PerHost = 0 },
		func(o *Options) { o.Rate = 0 },
	} {
		o := good
		mod(&o)
		if err := o.check(); err == nil {
			t.Fatalf("%+v: no error", o)
		}
	}
}

func TestPeerBinary(t *testing.T) {
	for _, c := range []struct {
		cmdline string
		want    string
	}{
		{"/usr/local/bin/varpar\x00peer\x00--config\x00/etc/varpar/peer.yaml\x00", "/usr/local/bin/varpar"},
		{"/usr/bin/qemu-aarch64-static\x00/usr/local/lib/varpar/varpar-v2\x00/usr/local/lib/varpar/varpar-v2\x00peer\x00", "/usr/local/lib/varpar/varpar-v2"},
		{"/bin/sh\x00/usr/local/lib/varpar/varpar-direct\x00start\x00", ""},
		{"varpar\x00peer\x00", ""},
		{"/usr/sbin/sshd\x00-D\x00", ""},
	} {
		if got := peerBinary(strings.Split(c.cmdline, "\x00")); got != c.want {
			t.Errorf("%q: %q, want %q", c.cmdline, got, c.want)
		}
	}
}
