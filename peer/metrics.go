package peer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one peer's Prometheus series, in a registry of its own (so that
// several peers can live in one test process).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // classify requests by outcome
	latency   *prometheus.HistogramVec // seconds, by stage
	answering prometheus.Histogram     // variants that answered per request
	members   prometheus.Gauge
	served    *prometheus.CounterVec // inference answers this peer computed, by variant
}

func newMetrics() *metrics {
	buckets := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_requests_total",
			Help: "Classify requests by outcome (decided, no_quorum, bad_request, busy, deadline, unauthorized, error)."}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "varpar_request_stage_seconds",
			Help: "Latency of classify requests by stage (read, fanout, total).", Buckets: buckets}, []string{"stage"}),
		answering: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "varpar_variants_answering",
			Help: "Variants whose answers a decision used.", Buckets: []float64{0, 1, 2, 3, 4, 5, 6, 8}}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "varpar_members_alive", Help: "Members this peer sees alive, itself included."}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "varpar_inferences_total",
			Help: "Inference answers computed by this peer, by variant and result."}, []string{"variant", "result"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.answering, m.members, m.served,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
