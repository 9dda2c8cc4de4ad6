package gossip_test

import (
	"context"
	"fmt"
	"time"

	"github.com/varpar/varpar/gossip"
)

// A node on its own; a second one would list the first's address in Seeds.
func Example() {
	cfg := gossip.DefaultConfig()
	cfg.Name = "pi-kitchen"
	cfg.BindAddr, cfg.BindPort = "127.0.0.1", 0 // any free port
	cfg.Key = []byte("0123456789abcdef0123456789abcdef")
	cfg.Meta = func() []byte { return []byte("opaque to gossip") }

	g, err := gossip.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := g.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer g.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitJoined(ctx); err != nil { // at once: no seeds
		fmt.Println(err)
		return
	}
	for _, m := range g.Members() {
		fmt.Printf("%s %s %q\n", m.Name, m.State, m.Meta)
	}
	if err := g.Leave(time.Second); err != nil {
		fmt.Println(err)
	}
	// Output:
	// pi-kitchen alive "opaque to gossip"
}
