package peer

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// configFields are Config's fields with their yaml keys and flag names.
func configFields(tb testing.TB) []reflect.StructField {
	tb.Helper()
	fields := reflect.VisibleFields(reflect.TypeFor[Config]())
	if len(fields) == 0 {
		tb.Fatal("Config has no fields")
	}
	return fields
}

// TestConfigFlags: every Config field has a yaml key, a flag named as the
// key with dashes (varpar peer --help says so) and a help text; the flag's
// default is DefaultConfig's value.
func TestConfigFlags(t *testing.T) {
	f := pflag.NewFlagSet("peer", pflag.ContinueOnError)
	BindFlags(f, DefaultConfig())
	def := reflect.ValueOf(DefaultConfig())
	seen := map[string]bool{}
	for i, field := range configFields(t) {
		key, name := field.Tag.Get("yaml"), field.Tag.Get("flag")
		if key == "" || name == "" || field.Tag.Get("usage") == "" {
			t.Errorf("Config.%s: yaml %q, flag %q, usage %q; want all three", field.Name, key, name, field.Tag.Get("usage"))
			continue
		}
		if want := strings.ReplaceAll(key, "_", "-"); name != want {
			t.Errorf("Config.%s: flag --%s for key %s, want --%s", field.Name, name, key, want)
		}
		if seen[name] {
			t.Errorf("flag --%s twice", name)
		}
		seen[name] = true
		fl := f.Lookup(name)
		if fl == nil {
			t.Errorf("Config.%s: no flag --%s", field.Name, name)
			continue
		}
		if fl.Usage != field.Tag.Get("usage") {
			t.Errorf("--%s: usage %q", name, fl.Usage)
		}
		// The flag's default as pflag prints it is DefaultConfig's value.
		probe := pflag.NewFlagSet("probe", pflag.ContinueOnError)
		cf := BindFlags(probe, DefaultConfig())
		if got := reflect.ValueOf(cf.values).Field(i).Interface(); !reflect.DeepEqual(got, def.Field(i).Interface()) {
			t.Errorf("--%s defaults to %v, DefaultConfig has %v", name, got, def.Field(i).Interface())
		}
	}
	n := 0
	f.VisitAll(func(*pflag.Flag) { n++ })
	if n != len(seen) {
		t.Errorf("%d flags for %d fields", n, len(seen))
	}
}

// TestFlagsOverFile: a flag given on the command line wins over the file,
// even when it is given its default value; a flag not given leaves the
// file's value alone.
func TestFlagsOverFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peer.yaml")
	os.WriteFile(file, []byte("node_name: from-file\nthreads: 3\nquorum: 2\nseeds: [a:1, b:2]\ndeadline: 5s\nlog_level: debug\n"), 0o644)
	f := pflag.NewFlagSet("peer", pflag.ContinueOnError)
	flags := BindFlags(f, DefaultConfig())
	if err := f.Parse([]string{"--threads", "5", "--quorum", "1", "--seeds", "c:3", "--hedge-delay", "7ms"}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if err := LoadConfigFile(file, &cfg); err != nil {
		t.Fatal(err)
	}
	flags.Apply(&cfg)
	want := DefaultConfig()
	want.NodeName, want.Deadline, want.LogLevel = "from-file", 5*time.Second, "debug"  // the file, no flag
	want.Threads, want.Seeds, want.HedgeDelay = 5, []string{"c:3"}, 7*time.Millisecond // flags over the file or the default
	want.Quorum = 1                                                                    // given as its default, still wins
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got\n%+v\nwant\n%+v", cfg, want)
	}
}

// machineDependent are the keys whose default depends on the machine: the
// example file has them commented out.
var machineDependent = map[string]bool{"node_name": true, "data_dir": true}

// TestExampleConfig holds deploy/peer.yaml to Config: it parses strictly
// (no unknown key), every key is in it (commented out when its default
// depends on the machine), with a comment, and its values are
// DefaultConfig's.
func TestExampleConfig(t *testing.T) {
	raw, err := os.ReadFile("../deploy/peer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("deploy/peer.yaml: %v", err)
	}
	// The file as a config file: what a peer started with it would get.
	loaded := DefaultConfig()
	if err := LoadConfigFile("../deploy/peer.yaml", &loaded); err != nil {
		t.Fatal(err)
	}
	def := reflect.ValueOf(DefaultConfig())
	g, l := reflect.ValueOf(got), reflect.ValueOf(loaded)
	for i, field := range configFields(t) {
		key := field.Tag.Get("yaml")
		line := regexp.MustCompile(`(?m)^(#\s*)?` + regexp.QuoteMeta(key) + `:[^#\n]*#\s*\S.*$`).Find(raw)
		if line == nil {
			t.Errorf("deploy/peer.yaml lacks a line %q with a comment (document every key)", key+": ... # ...")
			continue
		}
		commented := bytes.HasPrefix(line, []byte("#"))
		want := def.Field(i).Interface()
		switch {
		case machineDependent[key]:
			if !commented || !bytes.Contains(line, []byte("default:")) {
				t.Errorf("%s depends on the machine: want it commented out, saying its default: %s", key, line)
			}
			if !g.Field(i).IsZero() {
				t.Errorf("%s is set in the file, want it commented out", key)
			}
		case commented:
			t.Errorf("%s is commented out; want its default set: %s", key, line)
		case g.Field(i).Kind() == reflect.Slice:
			// "[]" is an empty list where the default is nil: the same
			// configuration.
			if g.Field(i).Len() != 0 || def.Field(i).Len() != 0 {
				t.Errorf("%s: file %v, default %v", key, g.Field(i).Interface(), want)
			}
		default:
			if !reflect.DeepEqual(g.Field(i).Interface(), want) {
				t.Errorf("%s: file %v, default %v", key, g.Field(i).Interface(), want)
			}
		}
		if l.Field(i).Kind() != reflect.Slice && !reflect.DeepEqual(l.Field(i).Interface(), want) {
			t.Errorf("%s: a peer started with the file gets %v, without it %v", key, l.Field(i).Interface(), want)
		}
	}
}
