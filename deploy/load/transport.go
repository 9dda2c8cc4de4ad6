package load

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ByteCounter counts the bytes of every connection its transports open:
// what HTTP puts on the wire, headers included.
type ByteCounter struct {
	sent, received atomic.Int64
}

// Sent is the bytes written so far.
func (bc *ByteCounter) Sent() int64 { return bc.sent.Load() }

// Received is the bytes read so far.
func (bc *ByteCounter) Received() int64 { return bc.received.Load() }

// Transport is an HTTP transport (no proxy) that keeps up to conns idle
// connections per host and counts their bytes in bc.
func (bc *ByteCounter) Transport(conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, bc: bc}, nil
		},
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
}

type countingConn struct {
	net.Conn
	bc *ByteCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.bc.received.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.bc.sent.Add(int64(n))
	return n, err
}
