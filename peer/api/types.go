package api

// Result is the decision of POST /v1/classify and how it was reached.
type Result struct {
	RequestID  string       `json:"request_id"`
	Class      string       `json:"class"`
	Index      int          `json:"index"`
	Confidence float64      `json:"confidence"` // fused score / sum of the fusion weights of the family
	Top        []ClassScore `json:"top"`
	Answered   []string     `json:"answered"` // variants whose answers were fused
	Missing    []string     `json:"missing"`  // variants that did not answer in time (or have no live replica)
	QuorumMet  bool         `json:"quorum_met"`
	Early      bool         `json:"early_decision"`
	LatencyMS  float64      `json:"latency_ms"`
	// Per answered variant: when its answer arrived (ms after the request
	// reached this peer) and the compute time it reported.
	Timings map[string]VariantTiming `json:"timings"`
}

// VariantTiming is when one variant's answer arrived and what it cost.
type VariantTiming struct {
	Member    string  `json:"member"`
	ArrivedMS float64 `json:"arrived_ms"`
	ComputeMS float64 `json:"compute_ms"`
}

// ClassScore is one class of the fused top-k.
type ClassScore struct {
	Index int     `json:"index"`
	Class string  `json:"class"`
	Score float64 `json:"score"`
}

// ClassifyAnswer is any body of POST /v1/classify: a Result when the request
// was decided (Error empty); on a refusal the error, and with it, for a
// quorum not reached (503), the partial Result saying which variants
// answered. Result is nil when the refusal carries none.
type ClassifyAnswer struct {
	Error string `json:"error,omitempty"`
	*Result
}

// ErrorBody is the body of every refusal but a quorum not reached.
type ErrorBody struct {
	Error string `json:"error"`
}

// ClusterView is GET /v1/cluster: one peer's view of the membership, the
// plan and who serves what.
type ClusterView struct {
	Self       string              `json:"self"`
	Family     string              `json:"family"`
	Variants   []string            `json:"variants"`
	Members    []MemberInfo        `json:"members"`
	Assignment map[string][]string `json:"assignment"` // variant → members the plan gives it
	Serving    map[string][]string `json:"serving"`    // variant → members announcing it
	Unserved   []string            `json:"unserved,omitempty"`
}

// MemberInfo is one member in ClusterView.
type MemberInfo struct {
	Name     string   `json:"name"`
	Addr     string   `json:"addr"`
	PeerID   string   `json:"peer_id"`
	Variants []string `json:"variants"`
	Speed    float64  `json:"speed"`
	Load     float64  `json:"load"`
	Version  string   `json:"version"`
}

// HasMember reports whether name is a member in the view.
func (cv *ClusterView) HasMember(name string) bool {
	for _, m := range cv.Members {
		if m.Name == name {
			return true
		}
	}
	return false
}

// AllServed reports whether the family has variants and some member
// announces each of them.
func (cv *ClusterView) AllServed() bool {
	for _, v := range cv.Variants {
		if len(cv.Serving[v]) == 0 {
			return false
		}
	}
	return len(cv.Variants) > 0
}
