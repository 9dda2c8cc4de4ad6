package main

// LoadReport is the part of varpar loadgen --json's report the harness reads.
type LoadReport struct {
	Scheduled    int               `json:"requests"`
	Sent         int               `json:"sent"`
	Dropped      int               `json:"dropped"`
	Successes    int               `json:"successes"`
	Errors       map[string]int    `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	Accuracy     *float64          `json:"accuracy,omitempty"`
	Correct      int               `json:"correct"`
	ElapsedS     float64           `json:"elapsed_s"`
	Latency      struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
}

// Failed is every request that was not answered: errors, and requests
// dropped because too many were in flight.
func (r *LoadReport) Failed() int {
	n := r.Dropped
	for _, c := range r.Errors {
		n += c
	}
	return n
}
