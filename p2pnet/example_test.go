package p2pnet_test

import (
	"context"
	"fmt"
	"time"

	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/p2pnet/pb"
)

// Two peers on loopback: one serves a variant, the other asks it for the
// top 2 classes of an image.
func ExampleHost_Infer() {
	cfg := p2pnet.DefaultConfig()
	listen, err := p2pnet.ListenAddr("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	cfg.ListenAddrs = []string{listen}
	cfg.ClusterKey = []byte("the cluster's shared secret key!")

	server, err := p2pnet.New(cfg)
	if err != nil {
		panic(err)
	}
	defer server.Close()
	server.SetInferHandler(func(ctx context.Context, from p2pnet.PeerID, req *pb.InferRequest) *pb.InferAnswer {
		// A real peer runs the variant here, honouring ctx.
		return &pb.InferAnswer{
			ModelSha256: make([]byte, 32),
			Indices:     []int32{281, 285},
			Probs:       []float32{0.71, 0.12},
		}
	})

	client, err := p2pnet.New(cfg)
	if err != nil {
		panic(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ans, err := client.Infer(ctx, server.Remote(), &pb.InferRequest{
		RequestId: "cat-1",
		VariantId: "r160-w0.5",
		K:         2,
		Input:     &pb.InferRequest_EncodedImage{EncodedImage: []byte("...JPEG bytes...")},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(ans.RequestId, ans.VariantId, ans.Error, ans.Indices, ans.Probs)
	// Output: cat-1 r160-w0.5 OK [281 285] [0.71 0.12]
}
