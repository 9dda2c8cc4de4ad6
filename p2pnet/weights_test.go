package p2pnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/varpar/varpar/p2pnet/pb"
)

// mapSource serves files from memory by hash; lie replaces a file's bytes.
type mapSource map[string][]byte

func (m mapSource) open(sha string) (io.ReadCloser, int64, bool) {
	b, ok := m[sha]
	if !ok {
		return nil, 0, false
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), true
}

func randomFile(seed int64, n int) ([]byte, string) {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// countingWriter records how many Write calls the fetcher made.
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

func TestFetchWeights(t *testing.T) {
	file, sha := randomFile(1, 3<<20+12345) // ~3 MB, not a multiple of the chunk size
	empty, emptySHA := randomFile(2, 0)
	server := newHost(t, func(c *Config) { c.ChunkSize = 256 << 10 })
	server.SetWeightsSource(mapSource{sha: file, emptySHA: empty}.open)
	client := newHost(t)
	ctx := testCtx(t, 20*time.Second)

	var w countingWriter
	start := time.Now()
	if err := client.FetchWeights(ctx, server.Remote(), sha, 4<<20, &w); err != nil {
		t.Fatalf("FetchWeights: %v", err)
	}
	t.Logf("fetched %d bytes in %d chunks in %v", w.Len(), w.writes, time.Since(start))
	if !bytes.Equal(w.Bytes(), file) {
		t.Fatalf("fetched %d bytes that differ from the %d-byte file", w.Len(), len(file))
	}
	if want := (len(file) + 256<<10 - 1) / (256 << 10); w.writes != want {
		t.Errorf("got %d chunks, want %d", w.writes, want)
	}

	var e bytes.Buffer
	if err := client.FetchWeights(ctx, server.Remote(), emptySHA, 1, &e); err != nil || e.Len() != 0 {
		t.Fatalf("empty file: got %d bytes, %v", e.Len(), err)
	}

	// Over the caller's size cap: refused before a byte is written.
	var small bytes.Buffer
	if err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, &small); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 MB file with a 1 MB cap: got %v, want ErrTooLarge", err)
	}
	if small.Len() != 0 {
		t.Errorf("%d bytes written for a file over the cap", small.Len())
	}

	// A file the server does not hold.
	_, other := randomFile(3, 10)
	var re *RemoteError
	if err := client.FetchWeights(ctx, server.Remote(), other, 1<<20, io.Discard); !errors.As(err, &re) || re.Code != pb.ErrorCode_NOT_FOUND {
		t.Fatalf("missing file: got %v, want a NOT_FOUND RemoteError", err)
	}

	// A malformed hash never leaves the caller.
	if err := client.FetchWeights(ctx, server.Remote(), strings.ToUpper(sha), 1<<20, io.Discard); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("upper-case hash: got %v, want ErrBadMessage", err)
	}
}

func TestFetchWeightsLyingSource(t *testing.T) {
	file, sha := randomFile(4, 600<<10)
	lie := append([]byte(nil), file...)
	lie[len(lie)/2] ^= 1
	short := file[:len(file)-1]
	server := newHost(t, func(c *Config) { c.ChunkSize = 64 << 10 })
	client := newHost(t)
	ctx := testCtx(t, 20*time.Second)

	server.SetWeightsSource(mapSource{sha: lie}.open)
	if err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, io.Discard); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("one flipped bit: got %v, want ErrHashMismatch", err)
	}

	// A source whose reader ends before the size it claimed.
	server.SetWeightsSource(func(string) (io.ReadCloser, int64, bool) {
		return io.NopCloser(bytes.NewReader(short)), int64(len(file)), true
	})
	var re *RemoteError
	if err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, io.Discard); !errors.As(err, &re) || re.Code != pb.ErrorCode_INTERNAL {
		t.Fatalf("source shorter than its size: got %v, want an INTERNAL RemoteError", err)
	}

	// A source that panics.
	server.SetWeightsSource(func(string) (io.ReadCloser, int64, bool) { panic("disk on fire") })
	if err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, io.Discard); !errors.As(err, &re) || re.Code != pb.ErrorCode_INTERNAL {
		t.Fatalf("panicking source: got %v, want an INTERNAL RemoteError", err)
	}

	// The server still serves honest files afterwards.
	server.SetWeightsSource(mapSource{sha: file}.open)
	var w bytes.Buffer
	if err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, &w); err != nil || !bytes.Equal(w.Bytes(), file) {
		t.Fatalf("honest fetch after lies: %v", err)
	}
}

// A server that is not a Host, sending streams that break the protocol.
func TestFetchWeightsBrokenStreams(t *testing.T) {
	file, sha := randomFile(5, 3000)
	chunk := func(off, end int, last bool) *pb.WeightsChunk {
		return &pb.WeightsChunk{TotalSize: uint64(len(file)), Offset: uint64(off), Data: file[off:end], Last: last}
	}
	tests := []struct {
		name   string
		chunks []*pb.WeightsChunk
		want   error
	}{
		{"ends early", []*pb.WeightsChunk{chunk(0, 1000, false)}, ErrShortData},
		{"skips a chunk", []*pb.WeightsChunk{chunk(0, 1000, false), chunk(2000, 3000, true)}, ErrShortData},
		{"size changes", []*pb.WeightsChunk{chunk(0, 1000, false), {TotalSize: 5000, Offset: 1000, Data: file[1000:2000]}}, ErrBadMessage},
		{"invalid chunk", []*pb.WeightsChunk{chunk(0, 1000, true)}, ErrBadMessage},
		{"whole file", []*pb.WeightsChunk{chunk(0, 1500, false), chunk(1500, 3000, true)}, nil},
	}
	client, server := newHost(t), newHost(t)
	ctx := testCtx(t, 20*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server.host.SetStreamHandler(WeightsProtocol, func(s network.Stream) {
				var req pb.WeightsRequest
				if err := readMsg(s, 1024, &req, nil); err != nil {
					s.Reset()
					return
				}
				for _, c := range tt.chunks {
					if err := writeMsg(s, c); err != nil {
						s.Reset()
						return
					}
				}
				s.Close()
			})
			err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, io.Discard)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchWeightsCancel(t *testing.T) {
	_, sha := randomFile(6, 10)
	client, server := newHost(t), newHost(t)
	served := make(chan struct{})
	// A server that takes the request and then says nothing.
	server.host.SetStreamHandler(WeightsProtocol, func(s network.Stream) {
		close(served)
		io.Copy(io.Discard, s) // until the client resets
		s.Reset()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-served; cancel() }()
	start := time.Now()
	err := client.FetchWeights(ctx, server.Remote(), sha, 1<<20, io.Discard)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 3*time.Second {
		t.Fatalf("cancelled fetch: got %v after %v, want context.Canceled at once", err, time.Since(start))
	}
}
