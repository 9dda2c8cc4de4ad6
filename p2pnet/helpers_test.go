package p2pnet

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/varpar/varpar/p2pnet/pb"
)

// Every test that starts hosts closes them; after all tests, no goroutine may
// be left behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testClusterKey = []byte("varpar test cluster key, 32 byte")

// testConfig is a loopback, port-0 configuration with a logger that writes
// to the test's log.
func testConfig(tb testing.TB) Config {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.ClusterKey = testClusterKey
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.InfoLevel)
	cfg.StreamTimeout = 5 * time.Second
	return cfg
}

// newHost starts a host that the test closes when it ends.
func newHost(tb testing.TB, modify ...func(*Config)) *Host {
	tb.Helper()
	cfg := testConfig(tb)
	for _, m := range modify {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return h
}

// testCtx is a context that ends well before the test binary's timeout, so a
// hung call fails the test instead of hanging it.
func testCtx(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

var testModelHash = bytes.Repeat([]byte{0x5a}, pb.SHA256Len)

func testRequest(id, variant string) *pb.InferRequest {
	return &pb.InferRequest{
		RequestId: id,
		VariantId: variant,
		K:         3,
		Input:     &pb.InferRequest_EncodedImage{EncodedImage: []byte("not really a JPEG")},
	}
}

// topK answers with classes derived from the image, so a test can tell that
// the answer is for its request.
func topK(_ context.Context, _ PeerID, req *pb.InferRequest) *pb.InferAnswer {
	img := req.GetEncodedImage()
	first := int32(0)
	if len(img) > 0 {
		first = int32(img[0])
	}
	ans := &pb.InferAnswer{ModelSha256: testModelHash}
	for i := int32(0); i < int32(req.K); i++ {
		ans.Indices = append(ans.Indices, first+i)
		ans.Probs = append(ans.Probs, 0.5/float32(i+1))
	}
	return ans
}
