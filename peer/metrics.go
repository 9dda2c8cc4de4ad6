package peer

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/varpar/varpar/p2pnet/pb"
)

// metrics are one peer's Prometheus series, in a registry of its own (so that
// several peers can live in one test process).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // classify requests by outcome
	latency   *prometheus.HistogramVec // seconds, by stage
	answering prometheus.Histogram     // variants that answered per request
	members   prometheus.Gauge
	served    *prometheus.CounterVec // inference calls this peer served, by variant and result
	suspected prometheus.Counter     // replicas the scheduler began to suspect
	probes    *prometheus.CounterVec // suspects' probes, by result
	gossipBad *prometheus.CounterVec // gossip packets and streams refused, by reason
}

func newMetrics() *metrics {
	buckets := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_requests_total",
			Help: "HTTP API requests by outcome: classify requests decided, no_quorum, bad_request, busy, deadline or error; " +
				"unauthorized counts every route refused for its bearer token."}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "varpar_request_stage_seconds",
			Help: "Latency of classify requests that reached the peer's classify, by stage: read (the body), " +
				"fanout (decoding, asking the variants and fusing their answers), total (both).", Buckets: buckets}, []string{"stage"}),
		answering: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "varpar_variants_answering",
			Help: "Variants whose answers a decision used.", Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8}}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "varpar_members_alive", Help: "Members this peer sees alive, itself included."}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_inferences_total",
			Help: "Inference calls this peer served (for itself or another peer), by variant and result: OK, " +
				"a refusal (BUSY, BAD_INPUT, UNKNOWN_VARIANT), DEADLINE (the call's deadline passed), or cancelled " +
				"(the asking peer no longer needed the answer: decided without it)."}, []string{"variant", "result"}),
		suspected: prometheus.NewCounter(prometheus.CounterOpts{Name: "varpar_replicas_suspected_total",
			Help: "Times the scheduler began to suspect a replica (a member serving a variant) from its own calls: failed, timed out or hedged around."}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_replica_probes_total",
			Help: "Calls probing a suspected replica after its back-off, by result: trusted (answered in time) or suspected (failed, or too slow)."}, []string{"result"}),
		gossipBad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_gossip_rejected_total",
			Help: "Gossip packets and streams refused, by reason (e.g. decrypt: not sealed with the cluster key)."}, []string{"reason"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.answering, m.members, m.served, m.suspected, m.probes, m.gossipBad,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// inferenceResult is the result label of varpar_inferences_total for a call
// that ended with code and err (submit's): a call cancelled by the asking
// peer, which decided without it, is "cancelled", not DEADLINE.
func inferenceResult(code pb.ErrorCode, err error) string {
	if code == pb.ErrorCode_DEADLINE && errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return code.String()
}

// gossipRejected counts a gossip packet or stream refused (gossip.Config's
// OnRejected).
func (m *metrics) gossipRejected(reason string) { m.gossipBad.WithLabelValues(reason).Inc() }
