package p2pnet

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/varpar/varpar/p2pnet/pb"
)

// Caps on what this package reads from a stream, in bytes, besides the
// configurable Config.MaxInferBytes.
const (
	// MaxAnswerBytes caps an InferAnswer: 2k numbers and a short message,
	// far below this even at k = pb.MaxK.
	MaxAnswerBytes = 64 << 10
	// maxWeightsRequestBytes caps a WeightsRequest (a 64-digit hash).
	maxWeightsRequestBytes = 256
	// maxChunkBytes caps a WeightsChunk: the largest data field plus room for
	// the other fields.
	maxChunkBytes = pb.MaxChunkData + 4<<10
	// maxInferBytesLimit is the largest Config.MaxInferBytes accepted: the
	// libp2p resource manager's default memory limit for one stream, which
	// the serving side reserves before it reads a request.
	maxInferBytesLimit = 16 << 20
)

// Config configures a Host. Start from DefaultConfig.
type Config struct {
	// ListenAddrs are the TCP multiaddrs to listen on, e.g.
	// "/ip4/0.0.0.0/tcp/7950"; port 0 picks a free port. Empty: listen on
	// nothing (a host that only dials, such as a one-shot client).
	ListenAddrs []string
	// KeyFile holds the peer's Ed25519 identity key, created (mode 0600) on
	// first start and loaded afterwards, so the peer ID survives restarts.
	// Empty: a new random identity every time (tests).
	KeyFile string
	// ClusterKey is the secret every peer of the cluster shares (at least 16
	// bytes). The private-network PSK is derived from it (see DerivePSK), so
	// hosts with different keys cannot connect at all. Required.
	ClusterKey []byte
	// Logger receives the host's own logs (libp2p's go to its own logger).
	Logger zerolog.Logger
	// MaxInferBytes caps one encoded InferRequest a peer accepts, image
	// included. At most 16 MiB.
	MaxInferBytes int
	// ChunkSize is the data size of the weights chunks this host sends,
	// 1 KiB..1 MiB.
	ChunkSize int
	// StreamTimeout is the deadline of any stream step for which no tighter
	// one is known: reading a request, each weights chunk (so a stalled
	// transfer fails, but a long one on a slow link does not), and an Infer
	// whose context and request carry no deadline.
	StreamTimeout time.Duration
	// MaxInferTime caps how long a request may hold a handler, whatever its
	// deadline says; it also shields against a caller whose clock is far
	// ahead.
	MaxInferTime time.Duration

	// noSessions serves InferProtocol only, as a peer from before
	// SessionProtocol did (tests).
	noSessions bool
}

// DefaultConfig returns the configuration a peer daemon starts from.
func DefaultConfig() Config {
	return Config{
		ListenAddrs:   []string{"/ip4/0.0.0.0/tcp/7950"}, // beside memberlist's 7946
		Logger:        zerolog.Nop(),
		MaxInferBytes: 8 << 20,   // a large JPEG, or a 1024x1024 RGB raw image with room to spare
		ChunkSize:     256 << 10, // 4 chunks a MiB: progress deadlines stay meaningful on Wi-Fi
		StreamTimeout: 10 * time.Second,
		MaxInferTime:  60 * time.Second,
	}
}

func (c *Config) validate() error {
	switch {
	case len(c.ClusterKey) < MinClusterKeyLen:
		return fmt.Errorf("p2pnet: Config.ClusterKey is %d bytes, need at least %d", len(c.ClusterKey), MinClusterKeyLen)
	case c.MaxInferBytes < 1<<10 || c.MaxInferBytes > maxInferBytesLimit:
		return fmt.Errorf("p2pnet: Config.MaxInferBytes = %d, want 1 KiB..16 MiB", c.MaxInferBytes)
	case c.ChunkSize < 1<<10 || c.ChunkSize > pb.MaxChunkData:
		return fmt.Errorf("p2pnet: Config.ChunkSize = %d, want 1 KiB..1 MiB", c.ChunkSize)
	case c.StreamTimeout <= 0:
		return fmt.Errorf("p2pnet: Config.StreamTimeout = %v, want > 0", c.StreamTimeout)
	case c.MaxInferTime <= 0:
		return fmt.Errorf("p2pnet: Config.MaxInferTime = %v, want > 0", c.MaxInferTime)
	}
	return nil
}
