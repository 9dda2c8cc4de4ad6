package peer

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/varpar/varpar/peer/api"
)

// startHTTP serves the JSON API: POST /v1/classify, GET /v1/cluster,
// /healthz, /readyz and /metrics (Prometheus). Every route but /healthz needs
// the bearer token when one is configured.
func (p *Peer) startHTTP() error {
	var token []byte
	if p.cfg.APIToken != "" {
		b, err := os.ReadFile(p.cfg.APIToken)
		if err != nil {
			return fmt.Errorf("api_token: %w", err)
		}
		token = []byte(strings.TrimSpace(string(b)))
		if len(token) < 16 {
			return fmt.Errorf("api_token %s: the token must have at least 16 characters", p.cfg.APIToken)
		}
	}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if token != nil {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
					p.metrics.requests.WithLabelValues("unauthorized").Inc()
					w.Header().Set("WWW-Authenticate", `Bearer realm="varpar"`)
					httpError(w, http.StatusUnauthorized, "missing or wrong bearer token")
					return
				}
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/classify", auth(p.serveClassify))
	mux.HandleFunc("GET /v1/cluster", auth(p.serveCluster))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", auth(p.serveReady))
	mux.Handle("GET /metrics", auth(promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP))
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	p.httpLn = ln
	p.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error().Err(err).Msg("http server")
		}
	}()
	return nil
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s=%q: want an integer from %d to %d", name, s, lo, hi)
	}
	return v, nil
}

func (p *Peer) serveClassify(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	bad := func(code int, err error) {
		p.metrics.requests.WithLabelValues("bad_request").Inc()
		httpError(w, code, err.Error())
	}
	classes := len(p.manifest.Classes)
	k, err := intParam(r, "k", 1, classes)
	if err != nil {
		bad(http.StatusBadRequest, err)
		return
	}
	quorum, err := intParam(r, "quorum", 1, len(p.manifest.Variants))
	if err != nil {
		bad(http.StatusBadRequest, err)
		return
	}
	dlms, err := intParam(r, "deadline_ms", 1, 60_000)
	if err != nil {
		bad(http.StatusBadRequest, err)
		return
	}
	// The deadline counts from here: reading the body, decoding and the
	// fan-out all fit in it, and the answer leaves when it passes.
	deadline := time.Duration(dlms) * time.Millisecond
	if deadline == 0 {
		deadline = p.cfg.Deadline
	}
	ctx, cancel := context.WithTimeout(r.Context(), deadline)
	defer cancel()
	dl, _ := ctx.Deadline()
	http.NewResponseController(w).SetReadDeadline(dl)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.cfg.MaxImageBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			bad(http.StatusRequestEntityTooLarge, fmt.Errorf("image larger than %d bytes", p.cfg.MaxImageBytes))
		case time.Now().After(dl):
			p.metrics.requests.WithLabelValues("deadline").Inc()
			httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("%v: passed while reading the image", ErrDeadline))
		default:
			bad(http.StatusBadRequest, err)
		}
		return
	}
	if len(body) == 0 {
		bad(http.StatusBadRequest, errors.New("empty body: send the JPEG or PNG bytes"))
		return
	}
	p.metrics.latency.WithLabelValues("read").Observe(time.Since(start).Seconds())
	fan := time.Now()
	res, err := p.Classify(ctx, Request{Image: body, K: k, Quorum: quorum, Deadline: max(time.Until(dl), time.Nanosecond)})
	p.metrics.latency.WithLabelValues("fanout").Observe(time.Since(fan).Seconds())
	p.metrics.latency.WithLabelValues("total").Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, ErrNoQuorum):
		p.metrics.requests.WithLabelValues("no_quorum").Inc()
		if noneAnswered(res) {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, http.StatusServiceUnavailable, api.ClassifyAnswer{Error: err.Error(), Result: res})
	case errors.Is(err, ErrBadRequest):
		bad(http.StatusBadRequest, err)
	case errors.Is(err, ErrBusy):
		p.metrics.requests.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrDeadline):
		p.metrics.requests.WithLabelValues("deadline").Inc()
		httpError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		p.metrics.requests.WithLabelValues("error").Inc()
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		p.metrics.requests.WithLabelValues("decided").Inc()
		p.log.Debug().Str("request", res.RequestID).Str("class", res.Class).Strs("answered", res.Answered).
			Bool("early", res.Early).Float64("ms", res.LatencyMS).Msg("classify")
		writeJSON(w, http.StatusOK, res)
	}
}

// Cluster reports the membership, the plan and who serves what.
func (p *Peer) Cluster() api.ClusterView {
	p.mu.Lock()
	view, plan := p.view, p.plan
	p.mu.Unlock()
	cv := api.ClusterView{Self: p.cfg.NodeName, Family: p.manifest.Name, Assignment: plan.Holders,
		Serving: map[string][]string{}, Unserved: plan.Unserved}
	for i, v := range p.manifest.Variants {
		cv.Variants = append(cv.Variants, v.ID)
		cv.Serving[v.ID] = []string{}
		for _, m := range view {
			if serves(m.Meta, v.ID, p.shas[i]) {
				cv.Serving[v.ID] = append(cv.Serving[v.ID], m.Name)
			}
		}
	}
	for _, m := range view {
		mi := api.MemberInfo{Name: m.Name, Addr: m.Addr, PeerID: m.P2P.ID.String(), Speed: float64(m.Meta.Speed),
			Load: float64(m.Meta.Load), Version: m.Meta.SoftwareVersion, Variants: []string{}}
		for _, v := range m.Meta.Variants {
			mi.Variants = append(mi.Variants, v.VariantId)
		}
		cv.Members = append(cv.Members, mi)
	}
	return cv
}

func (p *Peer) serveCluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Cluster())
}

// noneAnswered reports whether no variant answered a request that reached
// no quorum: none reachable from this peer, or it has just started. Another
// peer may do better, so the refusal carries Retry-After, which clients
// (peer/api.Pool) take as a cue to ask another peer.
func noneAnswered(res *api.Result) bool { return res == nil || len(res.Answered) == 0 }
