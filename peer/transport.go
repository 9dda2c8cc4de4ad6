package peer

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/p2pnet/pb"
)

// transport is what the peer needs of its libp2p host once it runs: its
// identity, to announce it, and calls to other peers. *p2pnet.Host is the
// real one (startTransport); the handlers it serves are set when it is made.
type transport interface {
	ID() p2pnet.PeerID
	Port() int
	Infer(ctx context.Context, to p2pnet.Remote, req *pb.InferRequest) (*pb.InferAnswer, error)
	FetchWeights(ctx context.Context, from p2pnet.Remote, sha256hex string, maxSize int64, w io.Writer) error
	Close() error
}

var _ transport = (*p2pnet.Host)(nil)

// startTransport opens the libp2p host on the configured address (IPv4 or
// IPv6) and serves inference and this peer's stored weights on it.
func (p *Peer) startTransport() (transport, error) {
	listen, err := p2pnet.ListenAddr(p.cfg.P2PAddr)
	if err != nil {
		return nil, fmt.Errorf("config: p2p_addr: %w", err)
	}
	cfg := p2pnet.DefaultConfig()
	cfg.ListenAddrs = []string{listen}
	cfg.KeyFile = filepath.Join(p.cfg.DataDir, "identity.key")
	cfg.ClusterKey = p.key
	cfg.Logger = p.log.With().Str("component", "p2p").Logger()
	h, err := p2pnet.New(cfg)
	if err != nil {
		return nil, err
	}
	h.SetInferHandler(p.handleInfer)
	h.SetWeightsSource(func(sha string) (r io.ReadCloser, size int64, ok bool) {
		f, n, err := p.store.Open(sha)
		if err != nil {
			return nil, 0, false
		}
		return f, n, true
	})
	return h, nil
}
