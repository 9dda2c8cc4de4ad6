package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/varpar/varpar/peer/api"
)

// Classify one image through a peer and print the fused class and which
// variants answered.
func ExampleClient_Classify() {
	// A stand-in for a peer at http://127.0.0.1:8080.
	srv := httptest.NewServer(&fakePeer{})
	defer srv.Close()

	c, err := api.NewClient(srv.URL) // api.WithTokenFile("token") off loopback
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	img := []byte("PNG or JPEG bytes")
	resp, err := c.Classify(ctx, img, api.Params{K: 3, Deadline: 2 * time.Second})
	if err != nil {
		fmt.Println("no answer:", err)
		return
	}
	if err := resp.Err(); err != nil {
		fmt.Println("refused:", err)
		return
	}
	r := resp.Answer.Result
	fmt.Printf("%s (%.2f) answered by %v, missing %v\n", r.Class, r.Confidence, r.Answered, r.Missing)
	// Output: 7 (0.95) answered by [w1 w2], missing [w3]
}

// Wait for a peer to be ready, then see who serves what.
func ExampleClient_Cluster() {
	srv := httptest.NewServer(&fakePeer{ready: true})
	defer srv.Close()
	c, _ := api.NewClient(srv.URL)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		fmt.Println("not ready:", err)
		return
	}
	cv, err := c.Cluster(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range cv.Members {
		fmt.Println(m.Name, "serves", m.Variants)
	}
	// Output: a serves [w1]
}
