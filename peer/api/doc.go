// Package api holds the types of a varpar peer's HTTP API and a Go client of
// it. The peer's handlers encode these types and the client decodes them, so
// there is one definition of every answer; the CLI (classify, loadgen, demo),
// deploy/local and the tests all talk to peers through Client.
//
// The API:
//
//	POST /v1/classify?k=K&quorum=Q&deadline_ms=D   body: a JPEG or PNG image
//	     200 Result; 503 ClassifyAnswer (too few variants answered: the
//	     error and the partial Result); 4xx and 5xx ErrorBody
//	GET  /v1/cluster   200 ClusterView
//	GET  /readyz       200 "ok", else 503 ErrorBody saying what is missing
//	GET  /healthz      200 "ok" (no token needed)
//	GET  /metrics      Prometheus text
//
// Every route but /healthz needs "Authorization: Bearer TOKEN" when the peer
// is configured with a token.
//
// Client talks to one peer; Pool to several, failing over to the next when
// one cannot be reached (connection refused or reset) and skipping it for a
// few seconds, but never retrying an answer a live peer gave; with a hedge
// delay, a classify request its peer has not answered within it also goes
// to the next peer (hedge.go).
//
// The package imports nothing of varpar, so that anything may use it.
package api
