package load

import (
	"time"

	"github.com/varpar/varpar/internal/stats"
)

// Summary is a run's report (loadgen prints it, or encodes it as JSON).
type Summary struct {
	Scheduled     int               `json:"requests"`
	Sent          int               `json:"sent"`
	Dropped       int               `json:"dropped"`
	Concurrency   int               `json:"concurrency,omitempty"`
	Healthz       bool              `json:"healthz,omitempty"` // GET /healthz was sent, not classify
	Successes     int               `json:"successes"`
	Errors        map[string]int    `json:"errors"`
	ErrorSamples  map[string]string `json:"error_samples,omitempty"` // the first message of each kind
	ElapsedS      float64           `json:"elapsed_s"`
	Throughput    float64           `json:"throughput_rps"` // successes per second
	Latency       LatencyStats      `json:"latency_ms"`
	Accuracy      *float64          `json:"accuracy,omitempty"` // when the answers use the data set's class names
	Correct       int               `json:"correct"`
	Labelled      int               `json:"-"` // successes whose image has a label
	MeanAnswering float64           `json:"mean_variants_answering"`
	// Where the time went, from the answers: the initiating peer's own
	// latency, and per variant how often it answered, when its answer
	// arrived at the initiator and the compute time it reported.
	InPeer        LatencyStats            `json:"in_peer_latency_ms"`
	Variants      map[string]VariantStats `json:"variants,omitempty"`
	BytesSent     float64                 `json:"bytes_sent_per_request"`
	BytesReceived float64                 `json:"bytes_received_per_request"`
}

// VariantStats are one variant's answers in a run.
type VariantStats struct {
	Answers int          `json:"answers"`
	Arrived LatencyStats `json:"arrived_ms"`
	Compute LatencyStats `json:"compute_ms"`
}

// LatencyStats are percentiles (internal/stats' nearest rank) of the
// successful requests' latency, in ms.
type LatencyStats struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summarize reports on outcomes of a run that took elapsed; classes are the
// data set's class names (accuracy is reported only if some answer is one of
// them). The byte counts, Concurrency and Healthz are the caller's to fill.
func Summarize(outs []Outcome, elapsed time.Duration, classes map[string]bool) Summary {
	s := Summary{Scheduled: len(outs), Errors: map[string]int{}, ErrorSamples: map[string]string{}, ElapsedS: elapsed.Seconds()}
	var lat, inPeer []time.Duration
	arrived, compute := map[string][]time.Duration{}, map[string][]time.Duration{}
	answering, known := 0, false
	for _, o := range outs {
		switch {
		case o.Dropped:
			s.Dropped++
			continue
		case o.ErrKind != "":
			s.Sent++
			if s.Errors[o.ErrKind] == 0 {
				s.ErrorSamples[o.ErrKind] = o.ErrMsg
			}
			s.Errors[o.ErrKind]++
			continue
		}
		s.Sent++
		s.Successes++
		lat = append(lat, o.Latency)
		answering += o.Answered
		inPeer = append(inPeer, fromMS(o.InPeerMS))
		for v, t := range o.Timings {
			arrived[v] = append(arrived[v], fromMS(t.ArrivedMS))
			compute[v] = append(compute[v], fromMS(t.ComputeMS))
		}
		if classes[o.Class] {
			known = true
		}
		if o.Label != "" {
			s.Labelled++
			if o.Class == o.Label {
				s.Correct++
			}
		}
	}
	if elapsed > 0 {
		s.Throughput = float64(s.Successes) / elapsed.Seconds()
	}
	s.Latency = Latencies(lat)
	s.InPeer = Latencies(inPeer)
	for v := range arrived {
		if s.Variants == nil {
			s.Variants = map[string]VariantStats{}
		}
		s.Variants[v] = VariantStats{Answers: len(arrived[v]), Arrived: Latencies(arrived[v]), Compute: Latencies(compute[v])}
	}
	if s.Successes > 0 {
		s.MeanAnswering = float64(answering) / float64(s.Successes)
	}
	if known && s.Labelled > 0 {
		acc := float64(s.Correct) / float64(s.Labelled)
		s.Accuracy = &acc
	}
	return s
}

func fromMS(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// Latencies are the p50, p90, p99 and maximum of lat in ms (zeros for none).
func Latencies(lat []time.Duration) LatencyStats {
	p := stats.Percentiles(lat, 0.50, 0.90, 0.99, 1)
	return LatencyStats{P50: MS(p[0]), P90: MS(p[1]), P99: MS(p[2]), Max: MS(p[3])}
}
