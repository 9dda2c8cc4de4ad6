package main

import (
	"context"
	"crypto/rand"
	"math/big"
	"net"
	"sync"
	"time"
)

// JunkCount is what a junk sender put on the wire.
type JunkCount struct {
	Datagrams, Streams int
}

// SendJunk sends random bytes until ctx ends, every 100 ms to each target:
// 20 UDP datagrams of 1 to 1400 bytes to its gossip address, and one TCP
// connection each to its gossip and libp2p addresses carrying 4 KB.
func SendJunk(ctx context.Context, gossip, p2p []string) JunkCount {
	var (
		mu    sync.Mutex
		count JunkCount
	)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for i := range gossip {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, s := junkOnce(gossip[i], p2p[i])
				mu.Lock()
				count.Datagrams += d
				count.Streams += s
				mu.Unlock()
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return count
		case <-t.C:
		}
	}
}

func junkOnce(gossip, p2p string) (datagrams, streams int) {
	if c, err := net.Dial("udp", gossip); err == nil {
		for range 20 {
			n, _ := rand.Int(rand.Reader, big.NewInt(1400))
			b := make([]byte, n.Int64()+1)
			rand.Read(b)
			if _, err := c.Write(b); err == nil {
				datagrams++
			}
		}
		c.Close()
	}
	for _, addr := range []string{gossip, p2p} {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(500 * time.Millisecond))
		b := make([]byte, 4096)
		rand.Read(b)
		if _, err := c.Write(b); err == nil {
			streams++
		}
		c.Close()
	}
	return datagrams, streams
}
