package peer

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/p2pnet/pb"
)

// fakeTransport stands in for the libp2p host: the test says how each call
// is answered, and sees which remotes were called for which variants.
type fakeTransport struct {
	mu    sync.Mutex
	calls []string // "remote variant"
	infer func(to p2pnet.Remote, req *pb.InferRequest) (*pb.InferAnswer, error)
}

func (f *fakeTransport) ID() p2pnet.PeerID { return "" }
func (f *fakeTransport) Port() int         { return 7947 }
func (f *fakeTransport) Close() error      { return nil }
func (f *fakeTransport) FetchWeights(context.Context, p2pnet.Remote, string, int64, io.Writer) error {
	return errors.New("fake transport: no weights")
}
func (f *fakeTransport) Infer(_ context.Context, to p2pnet.Remote, req *pb.InferRequest) (*pb.InferAnswer, error) {
	f.mu.Lock()
	f.calls = append(f.calls, to.String()+" "+req.VariantId)
	f.mu.Unlock()
	return f.infer(to, req)
}

// unitPeer is a peer of the built-in family that has started nothing: its
// transport is fake and its view is what the test sets.
func unitPeer(t *testing.T, net transport) *Peer {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.NodeName, cfg.DataDir, cfg.ClusterKey = "self", dir, filepath.Join(dir, "cluster.key")
	cfg.HedgeDelay = time.Hour // only failures move a call on
	if err := NewClusterKey(cfg.ClusterKey); err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() {
		p.cancel()
		p.sched.wait()
	})
	p.metrics, p.host = newMetrics(), net
	return p
}

// testMember is a member at ip serving the given variants of the family.
func (p *Peer) testMember(t *testing.T, name, ip string, self bool, variants ...int) memberView {
	t.Helper()
	meta := &pb.NodeMeta{Version: 1, PeerId: testPeerID, Libp2PPort: 7947}
	for _, v := range variants {
		meta.Variants = append(meta.Variants, &pb.ServedVariant{VariantId: p.manifest.Variants[v].ID, ModelSha256: p.shas[v]})
	}
	r, err := p2pnet.NewRemote(testPeerID, ip, 7947)
	if err != nil {
		t.Fatal(err)
	}
	return memberView{Name: name, Addr: ip, Meta: meta, P2P: r, Self: self}
}

// TestClassifyRefusesBadRemoteAnswers: a remote answer that does not answer
// the request, refuses, comes from other weights or names a class past the
// family fails its call only, and the scheduler falls back to the next
// replica.
func TestClassifyRefusesBadRemoteAnswers(t *testing.T) {
	good := func(p *Peer, req *pb.InferRequest) *pb.InferAnswer {
		return &pb.InferAnswer{RequestId: req.RequestId, VariantId: req.VariantId, ModelSha256: p.shas[0],
			Indices: []int32{3}, Probs: []float32{0.9}}
	}
	tests := []struct {
		name string
		lie  func(a *pb.InferAnswer) (*pb.InferAnswer, error)
	}{
		{"transport error", func(a *pb.InferAnswer) (*pb.InferAnswer, error) { return nil, errors.New("connection refused") }},
		{"another request", func(a *pb.InferAnswer) (*pb.InferAnswer, error) { a.RequestId = "other"; return a, nil }},
		{"busy", func(a *pb.InferAnswer) (*pb.InferAnswer, error) {
			return &pb.InferAnswer{RequestId: a.RequestId, VariantId: a.VariantId, Error: pb.ErrorCode_BUSY}, nil
		}},
		{"other weights", func(a *pb.InferAnswer) (*pb.InferAnswer, error) { a.ModelSha256 = make([]byte, 32); return a, nil }},
		{"class past the family", func(a *pb.InferAnswer) (*pb.InferAnswer, error) { a.Indices = []int32{99}; return a, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTransport{}
			p := unitPeer(t, f)
			f.infer = func(to p2pnet.Remote, req *pb.InferRequest) (*pb.InferAnswer, error) {
				if strings.Contains(to.String(), "10.0.0.1/") {
					return tt.lie(good(p, req))
				}
				return good(p, req), nil
			}
			p.view = []memberView{p.testMember(t, "a-liar", "10.0.0.1", false, 0), p.testMember(t, "b-honest", "10.0.0.2", false, 0)}
			res, err := p.Classify(context.Background(), Request{Image: digitPNG(t), K: 1, Deadline: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			v0 := p.manifest.Variants[0].ID
			if got := res.Timings[v0].Member; got != "b-honest" || res.Index != 3 {
				t.Errorf("answered by %q, class %d; want b-honest's class 3", got, res.Index)
			}
			if want := []string{testPeerID + "@/ip4/10.0.0.1/tcp/7947 " + v0, testPeerID + "@/ip4/10.0.0.2/tcp/7947 " + v0}; !slices.Equal(f.calls, want) {
				t.Errorf("calls %q, want the liar then the honest one", f.calls)
			}
		})
	}
}

// TestClassifyLocalVariantSkipsTheTransport: a variant this peer serves is
// computed by its own server, with no transport call, and counted as served.
func TestClassifyLocalVariantSkipsTheTransport(t *testing.T) {
	f := &fakeTransport{infer: func(p2pnet.Remote, *pb.InferRequest) (*pb.InferAnswer, error) {
		return nil, errors.New("fake transport: no remote serves anything here")
	}}
	p := unitPeer(t, f)
	p.pool = nn.NewPool(1)
	defer p.pool.Close()
	v := p.manifest.Variants[0]
	m, err := format.LoadVariant(p.famDir, v)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(v.ID, p.shas[0], m, p.pool, 4)
	defer s.stop()
	p.servers[v.ID] = s
	p.view = []memberView{p.testMember(t, "self", "10.0.0.9", true, 0)}

	res, err := p.Classify(context.Background(), Request{Image: digitPNG(t), K: 2, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Timings[v.ID].Member; got != "self" || !slices.Equal(res.Answered, []string{v.ID}) {
		t.Errorf("answered %v by %q, want %s by self", res.Answered, got, v.ID)
	}
	if len(f.calls) != 0 {
		t.Errorf("transport called for a local variant: %q", f.calls)
	}
	var served dto.Metric
	if err := p.metrics.served.WithLabelValues(v.ID, "OK").Write(&served); err != nil {
		t.Fatal(err)
	}
	if got := served.GetCounter().GetValue(); got != 1 {
		t.Errorf("served OK counted %v times, want 1", got)
	}
}
