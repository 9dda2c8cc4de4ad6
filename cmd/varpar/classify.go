package main

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
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/varpar/varpar/peer/api"
)

func newClassifyCmd() *cobra.Command {
	var (
		peerURL, tokenFile string
		p                  classifyParams
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "classify --peer URL [--k K] [--deadline D] [--quorum Q] [--token-file F] [--json] IMAGE...",
		Short: "Classify images with a running cluster, through one peer's HTTP API",
		Long: `Send each JPEG or PNG image to a peer's POST /v1/classify. The peer fans the image
out to the live variants of the cluster and fuses their top-k answers. For each image,
prints the class, its confidence, the variants that answered and those missing, whether
the decision came early (before every variant answered) and the peer's latency; with
--json, the peer's JSON answer with an "image" field, one object per line.

--k, --quorum and --deadline default to the peer's own settings. A request the peer
refuses (a bad image, too few variants answering) is reported with the peer's error
text; the exit status is then 1, after every image has been tried.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, images []string) error {
			if peerURL == "" {
				return usagef("--peer URL is required (the peer's HTTP API, e.g. http://127.0.0.1:8080)")
			}
			if err := p.check(); err != nil {
				return err
			}
			c, err := newAPIClient(peerURL, tokenFile, nil)
			if err != nil {
				return err
			}
			c.http.Timeout = p.clientTimeout()
			defer c.http.CloseIdleConnections()
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			failed := 0
			for _, path := range images {
				if err := classifyOne(cmd.Context(), c, path, p, asJSON, out); err != nil {
					fmt.Fprintln(errOut, "varpar:", err)
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d images failed", failed, len(images))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&peerURL, "peer", "", "the peer's HTTP API (http://host:port)")
	p.addFlags(f)
	f.StringVar(&tokenFile, "token-file", "", "file holding the API bearer token")
	f.BoolVar(&asJSON, "json", false, "print the peer's JSON answer, one object per line")
	return cmd
}

// classifyOne sends one image and prints the answer. A refused request is an
// error naming the image; with asJSON its JSON body is printed as well, since
// a 503 still says which variants answered.
func classifyOne(ctx context.Context, c *apiClient, path string, p classifyParams, asJSON bool, out io.Writer) error {
	img, err := os.ReadFile(path)
	if err != nil {
		return err // *PathError names the image
	}
	resp, err := c.classify(ctx, img, p)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if asJSON {
		if line, jerr := withImageField(resp.Body, path); jerr == nil {
			if _, err := fmt.Fprintf(out, "%s\n", line); err != nil {
				return err
			}
		}
	}
	if resp.Status != http.StatusOK {
		return fmt.Errorf("%s: %w", path, resp.err())
	}
	if !asJSON {
		r := resp.Result
		when := "late"
		if r.Early {
			when = "early"
		}
		_, err = fmt.Fprintf(out, "%s: %s (%.4f) answered %s missing %s %s %.1fms\n", path, r.Class, r.Confidence,
			listOrDash(r.Answered), listOrDash(r.Missing), when, r.LatencyMS)
	}
	return err
}

func listOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// withImageField returns the JSON object raw with "image": path put first.
func withImageField(raw []byte, path string) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '{' || !json.Valid(raw) {
		return nil, errors.New("not a JSON object")
	}
	name, _ := json.Marshal(path)
	line := append([]byte(`{"image":`), name...)
	rest := bytes.TrimSpace(raw[1:])
	if rest[0] != '}' {
		line = append(line, ',')
	}
	return append(line, rest...), nil
}

// classifyParams are the optional query parameters of POST /v1/classify;
// zero values leave them to the peer.
type classifyParams struct {
	K        int
	Quorum   int
	Deadline time.Duration
}

// addFlags registers --k, --quorum and --deadline, the request parameters
// classify, loadgen and demo send; 0 leaves each to the serving peer.
func (p *classifyParams) addFlags(f *pflag.FlagSet) {
	f.IntVar(&p.K, "k", 0, "classes each variant answers with (0: the serving peer's default)")
	f.IntVar(&p.Quorum, "quorum", 0, "variants that must answer (0: the serving peer's default)")
	f.DurationVar(&p.Deadline, "deadline", 0, "time the serving peer may take per request (0: its default, 2s unless configured)")
}

// maxDeadline is the longest deadline_ms the API takes.
const maxDeadline = 60 * time.Second

func (p classifyParams) check() error {
	if p.K < 0 {
		return usagef("--k %d: want 1 or more (0: the peer's default)", p.K)
	}
	if p.Quorum < 0 {
		return usagef("--quorum %d: want 1 or more (0: the peer's default)", p.Quorum)
	}
	if p.Deadline < 0 || p.Deadline > maxDeadline {
		return usagef("--deadline %s: want 1ms to %s (0: the peer's default)", p.Deadline, maxDeadline)
	}
	return nil
}

// clientTimeout bounds a whole HTTP exchange: the peer's deadline plus room
// for the upload and the answer.
func (p classifyParams) clientTimeout() time.Duration {
	if p.Deadline > 0 {
		return p.Deadline + 10*time.Second
	}
	return maxDeadline + 10*time.Second
}

func (p classifyParams) query() string {
	q := url.Values{}
	if p.K > 0 {
		q.Set("k", strconv.Itoa(p.K))
	}
	if p.Quorum > 0 {
		q.Set("quorum", strconv.Itoa(p.Quorum))
	}
	if p.Deadline > 0 {
		ms := (p.Deadline + time.Millisecond - 1) / time.Millisecond // round up: never ask for less
		q.Set("deadline_ms", strconv.FormatInt(int64(ms), 10))
	}
	return q.Encode()
}

// apiClient talks to one peer's HTTP API.
type apiClient struct {
	base  *url.URL
	token string // bearer token, or ""
	http  *http.Client
}

// newAPIClient makes a client of the peer at rawURL ("host:port" means
// http://host:port). hc may be nil for a client of its own.
func newAPIClient(rawURL, tokenFile string, hc *http.Client) (*apiClient, error) {
	base, err := parsePeerURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: base, http: hc}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	}
	if tokenFile != "" {
		if c.token, err = readToken(tokenFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// parsePeerURL accepts http(s)://host:port[/prefix] or a bare host:port.
func parsePeerURL(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "http://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, usagef("--peer %q: want http://host:port", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

func readToken(path string) (string, error) {
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

func (c *apiClient) url(path, query string) string {
	u := *c.base
	u.Path += path
	u.RawQuery = query
	return u.String()
}

func (c *apiClient) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// apiResult is a classify answer: api.Result, and on a refusal the error.
type apiResult struct {
	Error string `json:"error,omitempty"`
	api.Result
}

// classifyResponse is one exchange: the status, the raw body and its decoding.
type classifyResponse struct {
	Status int
	Body   []byte
	Result apiResult
}

// maxResponseBytes caps what is read of an answer (a top-k answer is small).
const maxResponseBytes = 1 << 20

// classify posts one encoded image. Any HTTP answer is a response (check
// Status); the error is for failures to get one.
func (c *apiClient) classify(ctx context.Context, img []byte, p classifyParams) (*classifyResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/v1/classify", p.query()), bytes.NewReader(img))
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
	r := &classifyResponse{Status: resp.StatusCode, Body: body}
	if err := json.Unmarshal(body, &r.Result); err != nil && resp.StatusCode == http.StatusOK {
		return nil, fmt.Errorf("peer answered 200 with a body that is not a classify result: %w", err)
	}
	return r, nil
}

// apiError is a peer's refusal.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

func (r *classifyResponse) err() error {
	if r.Status == http.StatusOK {
		return nil
	}
	msg := r.Result.Error
	if msg == "" {
		msg = strings.TrimSpace(string(r.Body))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
	}
	return &apiError{Status: r.Status, Msg: msg}
}

// get fetches path and returns the status and the body.
func (c *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
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

// cluster fetches GET /v1/cluster.
func (c *apiClient) cluster(ctx context.Context) (*api.ClusterView, error) {
	status, body, err := c.get(ctx, "/v1/cluster")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &apiError{Status: status, Msg: strings.TrimSpace(string(body))}
	}
	var cv api.ClusterView
	if err := json.Unmarshal(body, &cv); err != nil {
		return nil, fmt.Errorf("/v1/cluster: %w", err)
	}
	return &cv, nil
}
