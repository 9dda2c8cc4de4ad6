package p2pnet

import (
	"testing"
	"time"
)

// BenchmarkInferRoundTrip is one Infer call to a host in the same process
// whose handler answers at once: the transport's own latency per request
// (stream open, protocol selection, request, answer, close) on loopback.
func BenchmarkInferRoundTrip(b *testing.B) {
	client, server := newHost(b), newHost(b)
	server.SetInferHandler(topK)
	ctx := testCtx(b, 10*time.Minute)
	req := testRequest("r", "v")
	if _, err := client.Infer(ctx, server.AddrInfo(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.Infer(ctx, server.AddrInfo(), req); err != nil {
			b.Fatal(err)
		}
	}
}
