// Package load drives a running varpar cluster with classify requests and
// reports what came back: open-loop pacing (Pace), one request's outcome
// (SendClassify, SendHealthz, through one peer or an api.Pool that fails
// over between several and hedges around a stalled one), a data set
// pre-encoded for sending (LoadWorkload), a transport that counts the bytes on the wire
// (ByteCounter) and the report (Summarize, with internal/stats' percentile
// rule).
//
// `varpar loadgen` is flags and printing around it; `varpar demo` paces its
// requests with it; bench/cluster reads loadgen's report. Pace owns the
// goroutines it starts and returns after every one has ended.
package load
