package p2pnet

import (
	"testing"
	"time"
)

// BenchmarkInferRoundTrip is one Infer call to a host in the same process
// whose handler answers at once: the transport's own latency per request on
// loopback, on a session (SessionProtocol, the default) and with a stream per
// request (a peer without sessions: stream open, protocol selection, request,
// answer, close).
func BenchmarkInferRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name       string
		noSessions bool
	}{{"session", false}, {"stream", true}} {
		b.Run(tc.name, func(b *testing.B) {
			client := newHost(b)
			server := newHost(b, func(c *Config) { c.noSessions = tc.noSessions })
			server.SetInferHandler(topK)
			ctx := testCtx(b, 10*time.Minute)
			req := testRequest("r", "v")
			if _, err := client.Infer(ctx, server.Remote(), req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := client.Infer(ctx, server.Remote(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
