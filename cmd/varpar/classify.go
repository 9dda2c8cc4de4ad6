package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/varpar/varpar/deploy/load"
	"github.com/varpar/varpar/peer/api"
)

func newClassifyCmd() *cobra.Command {
	var (
		peerURLs  []string
		tokenFile string
		hedge     time.Duration
		p         api.Params
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "classify --peer URL[,URL...] [--k K] [--deadline D] [--quorum Q] [--token-file F] [--json] IMAGE...",
		Short: "Classify images with a running cluster, through one peer's HTTP API",
		Long: `Send each JPEG or PNG image to a peer's POST /v1/classify. The peer fans the image
out to the live variants of the cluster and fuses their top-k answers. For each image,
prints the class, its confidence, the variants that answered and those missing, whether
the decision came early (before every variant answered) and the peer's latency; with
--json, the peer's JSON answer with an "image" field, one object per line.

With several --peer URLs, each image goes to the first peer that can be reached: a
peer refusing the connection (stopped, restarting) is skipped for a few seconds, and
one that has not answered within --client-hedge (frozen, on a slow link) is skipped too
while the image also goes to the next peer; the first answer is used.
--k, --quorum and --deadline default to the peer's own settings. A request the peer
refuses (a bad image, too few variants answering) is reported with the peer's error
text; the exit status is then 1, after every image has been tried.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, images []string) error {
			if len(peerURLs) == 0 {
				return usagef("--peer URL is required (the peer's HTTP API, e.g. http://127.0.0.1:8080)")
			}
			if err := checkParams(p); err != nil {
				return err
			}
			hc := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}, Timeout: p.Timeout()}
			defer hc.CloseIdleConnections()
			c, err := newPool(peerURLs, tokenFile, hc, hedge)
			if err != nil {
				return err
			}
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
	f.StringSliceVar(&peerURLs, "peer", nil, "the peers' HTTP APIs (comma-separated http://host:port), tried in order")
	addParamsFlags(f, &p)
	f.StringVar(&tokenFile, "token-file", "", "file holding the API bearer token")
	addHedgeFlag(f, &hedge)
	f.BoolVar(&asJSON, "json", false, "print the peer's JSON answer, one object per line")
	return cmd
}

// classifyOne sends one image and prints the answer. A refused request is an
// error naming the image; with asJSON its JSON body is printed as well, since
// a 503 still says which variants answered.
func classifyOne(ctx context.Context, c load.Classifier, path string, p api.Params, asJSON bool, out io.Writer) error {
	img, err := os.ReadFile(path)
	if err != nil {
		return err // *PathError names the image
	}
	resp, err := c.Classify(ctx, img, p)
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
		return fmt.Errorf("%s: %w", path, resp.Err())
	}
	if !asJSON {
		r := resp.Answer.Result
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

// addParamsFlags registers --k, --quorum and --deadline, the request
// parameters classify, loadgen and demo send; 0 leaves each to the serving
// peer.
func addParamsFlags(f *pflag.FlagSet, p *api.Params) {
	f.IntVar(&p.K, "k", 0, "classes each variant answers with (0: the serving peer's default)")
	f.IntVar(&p.Quorum, "quorum", 0, "variants that must answer (0: the serving peer's default)")
	f.DurationVar(&p.Deadline, "deadline", 0, "time the serving peer may take per request (0: its default, 2s unless configured)")
}

func checkParams(p api.Params) error {
	if p.K < 0 {
		return usagef("--k %d: want 1 or more (0: the peer's default)", p.K)
	}
	if p.Quorum < 0 {
		return usagef("--quorum %d: want 1 or more (0: the peer's default)", p.Quorum)
	}
	if p.Deadline < 0 || p.Deadline > api.MaxDeadline {
		return usagef("--deadline %s: want 1ms to %s (0: the peer's default)", p.Deadline, api.MaxDeadline)
	}
	return nil
}

// defaultClientHedge is --client-hedge's default: well above a live
// peer's answer on a lab network, well below a request's deadline.
const defaultClientHedge = 250 * time.Millisecond

// addHedgeFlag adds --client-hedge.
func addHedgeFlag(f *pflag.FlagSet, d *time.Duration) {
	f.DurationVar(d, "client-hedge", defaultClientHedge,
		"with several --peer URLs, also send a request to the next peer when its peer has not answered within this (0: off)")
}

// newPool makes a client of the peers at --peer rawURLs that fails over
// between them and hedges after hedge (0: not); a URL it cannot use is a
// usage error.
func newPool(rawURLs []string, tokenFile string, hc *http.Client, hedge time.Duration) (*api.Pool, error) {
	if hedge < 0 {
		return nil, usagef("--client-hedge %s: want 0 (off) or more", hedge)
	}
	for _, u := range rawURLs {
		if _, err := api.ParseURL(u); err != nil {
			return nil, usagef("--peer %q: want http://host:port", u)
		}
	}
	opts := []api.Option{api.WithTokenFile(tokenFile)}
	if hc != nil {
		opts = append(opts, api.WithHTTPClient(hc))
	}
	p, err := api.NewPool(rawURLs, 0, opts...)
	if err != nil {
		return nil, err
	}
	p.SetHedge(hedge)
	return p, nil
}
