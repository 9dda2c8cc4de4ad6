package peer

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzLoadConfigFile: any bytes as a YAML config file give an error naming
// the file, or a config whose Validate answers (nil or an error) without
// panicking.
func FuzzLoadConfigFile(f *testing.F) {
	f.Add([]byte("node_name: pi-1\nseeds: [\"10.0.0.2:7946\"]\n"))
	f.Add([]byte("k: -1\nquorum: 99\ndeadline: 1ms\n"))
	f.Add([]byte("unknown_key: 1\n"))
	f.Add([]byte("node_name: [\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "varpar.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		if err := LoadConfigFile(path, &cfg); err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		_ = cfg.Validate() // must answer, not panic
	})
}

// FuzzReadClusterKey: a key file holding the canonical base64 of 32 bytes
// (surrounding space and line breaks allowed) is accepted as those bytes,
// and whatever is accepted is 32 bytes.
func FuzzReadClusterKey(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(make([]byte, ClusterKeySize)) + "\n"))
	f.Add([]byte("not base64"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(make([]byte, 31))))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "cluster.key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := ReadClusterKey(path)
		if err == nil && len(key) != ClusterKeySize {
			t.Fatalf("ReadClusterKey(%q) accepted a %d-byte key", data, len(key))
		}
		text := strings.NewReplacer("\r", "", "\n", "").Replace(strings.TrimSpace(string(data)))
		want, derr := base64.StdEncoding.Strict().DecodeString(text)
		if derr == nil && len(want) == ClusterKeySize && base64.StdEncoding.EncodeToString(want) == text {
			if err != nil || string(key) != string(want) {
				t.Fatalf("ReadClusterKey(%q) = %x, %v; want %x", data, key, err, want)
			}
		}
	})
}

// FuzzIntParam: a request's query parameter is an integer within the bounds,
// or absent (0), or an error naming the parameter.
func FuzzIntParam(f *testing.F) {
	for _, q := range []string{"k=3", "k=0", "k=-1", "k=99999999999999999999", "k=%zz", "k=3&k=4", "k=+3", "k= 3", ""} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{URL: &url.URL{Path: "/v1/classify", RawQuery: rawQuery}}
		v, err := intParam(r, "k", 1, 10)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), "k=") {
				t.Errorf("error %q does not name k", err)
			}
		case v == 0:
			if r.URL.Query().Get("k") != "" {
				t.Errorf("query %q: k given but 0 returned", rawQuery)
			}
		case v < 1 || v > 10:
			t.Errorf("query %q: k=%d outside [1, 10]", rawQuery, v)
		default:
			if want, err := strconv.Atoi(r.URL.Query().Get("k")); err != nil || v != want {
				t.Errorf("query %q: k=%d, want %d (%v)", rawQuery, v, want, err)
			}
		}
	})
}
