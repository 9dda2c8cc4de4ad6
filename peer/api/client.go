package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ErrBadURL is wrapped by NewClient for a peer address it cannot use.
var ErrBadURL = errors.New("api: want http://host:port")

// Client talks to one peer's HTTP API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string // bearer token, or ""
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient makes the client send through hc (a shared transport, a
// timeout, a byte counter). By default each Client has its own.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		c.hc = hc
		return nil
	}
}

// WithTokenFile sends the bearer token held in the file at path ("": none).
func WithTokenFile(path string) Option {
	return func(c *Client) error {
		if path == "" {
			return nil
		}
		tok, err := ReadToken(path)
		c.token = tok
		return err
	}
}

// NewClient makes a client of the peer at rawURL: http(s)://host:port with an
// optional path prefix, or a bare host:port meaning http://host:port.
func NewClient(rawURL string, opts ...Option) (*Client, error) {
	base, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	}
	return c, nil
}

// ParseURL accepts http(s)://host:port[/prefix] or a bare host:port; the
// error wraps ErrBadURL.
func ParseURL(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%q: %w", s, ErrBadURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// ReadToken reads a bearer token file: one line holding the token.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("token file %s: want one line holding the token", path)
	}
	return tok, nil
}

// URL is the peer's base address.
func (c *Client) URL() string { return c.base.String() }

// CloseIdleConnections closes the idle connections of the client's HTTP
// client.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

func (c *Client) url(path, query string) string {
	u := *c.base
	u.Path += path
	u.RawQuery = query
	return u.String()
}

func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.hc.Do(req)
}

// maxResponseBytes caps what is read of an answer (a top-k answer is small).
const maxResponseBytes = 1 << 20

// ClassifyResponse is one classify exchange: the status, the raw body and
// its decoding.
type ClassifyResponse struct {
	Status int
	Body   []byte
	Answer ClassifyAnswer // Answer.Result is never nil
	// RetryAfter is the peer's Retry-After header: set on a refusal that
	// another peer, or this one later, may not give (busy; no variant
	// reachable from this peer).
	RetryAfter string
}

// Retryable reports whether the answer is a refusal for now: a 503 with
// Retry-After.
func (r *ClassifyResponse) Retryable() bool {
	return r.Status == http.StatusServiceUnavailable && r.RetryAfter != ""
}

// Err is nil for a 200, else an *Error with the peer's message.
func (r *ClassifyResponse) Err() error {
	if r.Status == http.StatusOK {
		return nil
	}
	msg := r.Answer.Error
	if msg == "" {
		msg = shorten(r.Body)
	}
	return &Error{Status: r.Status, Msg: msg}
}

// Classify posts one encoded image (JPEG or PNG). Any HTTP answer is a
// response (check Status or Err); the error is for failures to get one, or
// a 200 whose body is not a Result.
func (c *Client) Classify(ctx context.Context, img []byte, p Params) (*ClassifyResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v1/classify", p.Query()), bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	r, err := DecodeClassify(resp.StatusCode, body)
	if err == nil {
		r.RetryAfter = resp.Header.Get("Retry-After")
	}
	return r, err
}

// DecodeClassify decodes a classify answer: status and body as a peer sent
// them. A body that is not JSON is an error only with status 200 (a proxy's
// 502 page is still a response, whose Err says what it was).
func DecodeClassify(status int, body []byte) (*ClassifyResponse, error) {
	r := &ClassifyResponse{Status: status, Body: body}
	if err := json.Unmarshal(body, &r.Answer); err != nil && status == http.StatusOK {
		return nil, fmt.Errorf("api: peer answered 200 with a body that is not a classify result: %w", err)
	}
	if r.Answer.Result == nil {
		r.Answer.Result = &Result{}
	}
	return r, nil
}

// Error is a peer's refusal: a status other than 200 and its message.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// Get fetches path (e.g. "/metrics") and returns the status and the body.
func (c *Client) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, ""), nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	return resp.StatusCode, body, err
}

// Cluster fetches GET /v1/cluster.
func (c *Client) Cluster(ctx context.Context) (*ClusterView, error) {
	status, body, err := c.Get(ctx, "/v1/cluster")
	if err != nil {
		return nil, err
	}
	return DecodeCluster(status, body)
}

// DecodeCluster decodes an answer to GET /v1/cluster: the view for a 200,
// else an *Error with the peer's message.
func DecodeCluster(status int, body []byte) (*ClusterView, error) {
	if status != http.StatusOK {
		return nil, &Error{Status: status, Msg: errorMessage(body)}
	}
	var cv ClusterView
	if err := json.Unmarshal(body, &cv); err != nil {
		return nil, fmt.Errorf("api: /v1/cluster: %w", err)
	}
	return &cv, nil
}

// Ready asks GET /readyz: nil when the peer is ready, an *Error saying what
// it lacks when it answers otherwise, or the failure to get an answer.
func (c *Client) Ready(ctx context.Context) error {
	return c.probe(ctx, "/readyz")
}

// Healthz asks GET /healthz: nil when the peer's HTTP server answers 200.
func (c *Client) Healthz(ctx context.Context) error {
	return c.probe(ctx, "/healthz")
}

func (c *Client) probe(ctx context.Context, path string) error {
	status, body, err := c.Get(ctx, path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &Error{Status: status, Msg: errorMessage(body)}
	}
	return nil
}

// errorMessage is the "error" of an ErrorBody, else the body itself, short.
func errorMessage(body []byte) string {
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return shorten(body)
}

func shorten(body []byte) string {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
