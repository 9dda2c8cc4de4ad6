//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/peer"
	"github.com/varpar/varpar/peer/api"
)

// TestClusterKeyAndToken: a peer with another cluster key neither joins nor
// serves; an API with a token refuses requests without it.
func TestClusterKeyAndToken(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 2)
	dir := t.TempDir()
	token, otherKey := filepath.Join(dir, "token"), filepath.Join(dir, "other.key")
	for _, f := range []string{token, otherKey} {
		if err := peer.NewClusterKey(f); err != nil {
			t.Fatal(err)
		}
	}
	ps := startPeers(t, c,
		local.Spec{Name: "a", Args: []string{"--api-token", token}, TokenFile: token},
		local.Spec{Name: "b"})
	x := startPeers(t, c, local.Spec{Name: "x", Key: otherKey, Seeds: []string{ps[0].GossipAddr, ps[1].GossipAddr}})[0]
	waitReady(t, c, ps)
	// x serves every variant itself, but is not ready: no member of the
	// cluster it was told to join (its seeds) sees it.
	for deadline := time.Now().Add(readyTimeout); ; time.Sleep(150 * time.Millisecond) {
		var ae *api.Error
		err := x.API.Ready(context.Background())
		if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && strings.Contains(ae.Msg, "another member") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("x, with another key: readyz %v; want 503, waiting for another member", err)
		}
	}
	for i := range 10 {
		resp, _ := classifyAt(t, ps[i%2], img, api.Params{Quorum: 1})
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %v", ps[i%2].Name, resp.Err())
		}
	}
	// Over a few gossip rounds, the views stay apart.
	for range 10 {
		for _, p := range append(slices.Clone(ps), x) {
			cv, err := p.API.Cluster(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range cv.Members {
				names = append(names, m.Name)
			}
			slices.Sort(names)
			want := []string{"a", "b"}
			if p == x {
				want = []string{"x"}
			}
			if !slices.Equal(names, want) {
				t.Fatalf("%s sees members %v, want %v", p.Name, names, want)
			}
			for v, holders := range cv.Serving {
				if (p == x) != slices.Contains(holders, "x") {
					t.Errorf("%s: %s served by %v", p.Name, v, holders)
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	// x computed nothing for a and b.
	status, metrics, err := x.API.Get(context.Background(), "/metrics")
	if err != nil || status != http.StatusOK {
		t.Fatalf("x /metrics: %d %v", status, err)
	}
	if bytes.Contains(metrics, []byte("varpar_inferences_total{")) {
		t.Errorf("x, of another cluster, computed inferences:\n%s", grepLines(metrics, "varpar_inferences_total"))
	}

	// The token.
	a := ps[0]
	url := "http://" + a.HTTPAddr
	tok, err := api.ReadToken(token)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/v1/classify", "", http.StatusUnauthorized},
		{"POST", "/v1/classify", "Bearer wrong-token-wrong-token", http.StatusUnauthorized},
		{"POST", "/v1/classify", "Basic " + tok, http.StatusUnauthorized},
		{"GET", "/v1/cluster", "", http.StatusUnauthorized},
		{"GET", "/readyz", "", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusUnauthorized},
		{"GET", "/healthz", "", http.StatusOK},
		{"POST", "/v1/classify", "Bearer " + tok, http.StatusOK},
		{"GET", "/v1/cluster", "Bearer " + tok, http.StatusOK},
	} {
		req, _ := http.NewRequest(tt.method, url+tt.path, bytes.NewReader(img))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := rawHTTP(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with %q: %d %s, want %d", tt.method, tt.path, tt.auth, resp.StatusCode, body, tt.want)
		}
	}
	file := writeFile(t, filepath.Join(dir, "d.png"), string(img))
	if _, errOut, code := run(t, "classify", "--peer", url, file); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("classify without the token: exit %d, %q", code, errOut)
	}
	if out, errOut, code := run(t, "classify", "--peer", url, "--token-file", token, file); code != 0 || !strings.HasPrefix(out, file+": ") {
		t.Errorf("classify with the token: exit %d, %q %q", code, out, errOut)
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestClusterBadRequests: hostile and malformed requests get 4xx answers
// that say what is wrong, and the peer keeps serving.
func TestClusterBadRequests(t *testing.T) {
	fam := testFamily(t)
	c := startTestCluster(t, fam)
	img, _ := digit(t, 3)
	p := startPeers(t, c, local.Spec{Name: "solo", Args: []string{"--max-image-bytes", "4096"}})[0]
	waitReady(t, c, []*local.Peer{p})
	tests := []struct {
		name, query string
		body        []byte
		want        int
		msg         string
	}{
		{"garbage", "", []byte("this is not an image at all"), 400, "not a JPEG or PNG"},
		{"empty", "", nil, 400, "empty body"},
		{"truncated", "", img[:len(img)/2], 400, ""},
		{"huge declared size", "", pngHeader(100_000, 100_000), 400, "pixel"},
		{"k 0", "k=0", img, 400, `k="0": want an integer from 1 to 10`},
		{"k 11", "k=11", img, 400, `k="11"`},
		{"k text", "k=three", img, 400, `k="three"`},
		{"quorum 5", "quorum=5", img, 400, `quorum="5": want an integer from 1 to 4`},
		{"quorum 0", "quorum=0", img, 400, "quorum"},
		{"deadline 0", "deadline_ms=0", img, 400, "deadline_ms"},
		{"oversize", "", bytes.Repeat([]byte{0x89}, 5000), 413, "larger than 4096 bytes"},
		{"good", "k=2&quorum=4&deadline_ms=3000", img, 200, ""},
	}
	hc := rawHTTP(t)
	for _, tt := range tests {
		resp, err := hc.Post("http://"+p.HTTPAddr+"/v1/classify?"+tt.query, "application/octet-stream", bytes.NewReader(tt.body))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r api.ClassifyAnswer
		json.Unmarshal(body, &r)
		if resp.StatusCode != tt.want || !strings.Contains(r.Error, tt.msg) || (tt.want != 200 && r.Error == "") {
			t.Errorf("%s: %d %s; want %d with an error saying %q", tt.name, resp.StatusCode, bytes.TrimSpace(body), tt.want, tt.msg)
		}
	}
	resp, err := hc.Get("http://" + p.HTTPAddr + "/v1/classify")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/classify: %d, want 405", resp.StatusCode)
	}
	garbage := writeFile(t, filepath.Join(t.TempDir(), "garbage.png"), "GIF89a not what it says")
	if _, errOut, code := run(t, "classify", "--peer", p.HTTPAddr, garbage); code != 1 ||
		!strings.Contains(errOut, garbage+": peer answered 400 Bad Request: ") || !strings.Contains(errOut, "not a JPEG or PNG") {
		t.Errorf("classify of a garbage file: exit %d, %q", code, errOut)
	}
	status, metrics, err := p.API.Get(context.Background(), "/metrics")
	if err != nil || status != 200 || !bytes.Contains(metrics, []byte(`varpar_requests_total{outcome="bad_request"} 12`)) {
		t.Errorf("/metrics: %d %v:\n%s", status, err, grepLines(metrics, "varpar_requests_total"))
	}
}

// pngHeader is the start of a PNG declaring w x h pixels: enough for a
// decoder to read the size, nothing more.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := []byte{0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}
	for i := range 4 {
		ihdr[8+i] = byte(w >> (24 - 8*i))
		ihdr[12+i] = byte(h >> (24 - 8*i))
	}
	b.Write(ihdr)
	crc := crc32.ChecksumIEEE(ihdr[4:])
	b.Write([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	if _, err := png.DecodeConfig(bytes.NewReader(b.Bytes())); err != nil {
		panic(err)
	}
	return b.Bytes()
}
