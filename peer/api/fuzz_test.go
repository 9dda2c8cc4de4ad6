package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// FuzzDecodeClassify: whatever a peer (or something posing as one) answers,
// the client returns a response or an error, never panics, and the response
// keeps its promises: a Result to read, Err nil exactly for a 200, and an
// error for a 200 whose body is not a result.
func FuzzDecodeClassify(f *testing.F) {
	f.Add(200, []byte(`{"request_id":"a","class":"7","index":7,"confidence":0.9,"top":[{"index":7,"class":"7","score":0.9}],"answered":["v1"],"missing":[],"quorum_met":true,"early_decision":false,"latency_ms":1.5,"timings":{"v1":{"member":"p1","arrived_ms":1,"compute_ms":0.5}}}`))
	f.Add(503, []byte(`{"error":"quorum not met","answered":[]}`))
	f.Add(502, []byte("<html>bad gateway</html>"))
	f.Add(200, []byte(`{"top":null}`))
	f.Add(200, []byte(`[1,2`))
	f.Add(400, []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := DecodeClassify(status, body)
		if err != nil {
			if status != http.StatusOK {
				t.Fatalf("status %d: error %v; only a 200 with a bad body is an error", status, err)
			}
			return
		}
		if r.Answer.Result == nil {
			t.Fatal("Answer.Result is nil")
		}
		if (r.Err() == nil) != (status == http.StatusOK) {
			t.Fatalf("status %d: Err() = %v", status, r.Err())
		}
		var apiErr *Error
		if e := r.Err(); e != nil && (!errors.As(e, &apiErr) || apiErr.Status != status) {
			t.Fatalf("Err() = %#v, want an *Error with status %d", e, status)
		}
		if status == http.StatusOK && !json.Valid(body) {
			t.Fatalf("a 200 with invalid JSON %q was accepted", body)
		}
	})
}

// FuzzDecodeCluster: a view for a 200 with a JSON object, an *Error naming
// the status otherwise, never a panic.
func FuzzDecodeCluster(f *testing.F) {
	f.Add(200, []byte(`{"self":"p1","members":[{"name":"p1","address":"127.0.0.1:7946","variants":["v1"]}],"assignment":{"p1":["v1"]},"serving":{"v1":["p1"]}}`))
	f.Add(401, []byte(`{"error":"missing or wrong bearer token"}`))
	f.Add(500, []byte("plain text that goes on and on"))
	f.Add(200, []byte(`null`))
	f.Add(200, []byte(`{"members":"no"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		cv, err := DecodeCluster(status, body)
		if status != http.StatusOK {
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.Status != status {
				t.Fatalf("status %d: err = %v, want an *Error with that status", status, err)
			}
			return
		}
		if err == nil && cv == nil {
			t.Fatal("no view and no error")
		}
		if err == nil && !json.Valid(body) {
			t.Fatalf("invalid JSON %q accepted", body)
		}
	})
}
