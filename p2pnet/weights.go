package p2pnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/rs/zerolog"

	"github.com/varpar/varpar/p2pnet/pb"
)

// WeightsProtocol is the stream protocol for fetching a weights file by its
// SHA-256: the caller writes one WeightsRequest, the server writes the file
// as WeightsChunks in order (or one error chunk) and closes.
const WeightsProtocol = "/varpar/weights/1.0.0"

// weightsService names the protocol's resource-manager scope.
const weightsService = "varpar.weights"

// WeightsSource opens the weights file with the given SHA-256 (lowercase
// hex) and reports its size, or ok = false when this peer does not hold it.
// The Host closes r when done. The source need not verify the hash: the
// fetcher does.
type WeightsSource func(sha256hex string) (r io.ReadCloser, size int64, ok bool)

// SetWeightsSource serves WeightsProtocol from fn, replacing any earlier
// source; nil stops serving it.
func (h *Host) SetWeightsSource(fn WeightsSource) {
	h.mu.Lock()
	h.weights = fn
	closed := h.closed
	h.mu.Unlock()
	switch {
	case closed:
	case fn == nil:
		h.host.RemoveStreamHandler(WeightsProtocol)
	default:
		h.host.SetStreamHandler(WeightsProtocol, h.track(h.handleWeights))
	}
}

func (h *Host) weightsSource() WeightsSource {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.weights
}

// FetchWeights streams the weights file with the given SHA-256 from the peer
// into w, and returns nil only once the whole file has arrived and hashes to
// sha256hex.
//
// w sees the bytes before they are verified, so it must be a temporary file
// (or buffer) that the caller renames into place, or loads, only after a nil
// return, and discards otherwise. On failure the caller should try another
// holder. Errors wrap ErrHashMismatch (the peer sent other bytes),
// ErrShortData (the stream ended early or skipped), ErrTooLarge (the file is
// over maxSize bytes, refused before any byte is written), ErrBadMessage,
// *RemoteError (NOT_FOUND when the peer lacks the file), a context error,
// ErrClosed, or w's error.
//
// ctx bounds the whole transfer; besides, every chunk must arrive within
// Config.StreamTimeout of the previous one.
func (h *Host) FetchWeights(ctx context.Context, r Remote, sha256hex string, maxSize int64, w io.Writer) error {
	from := r.addrInfo()
	if h.isClosed() {
		return ErrClosed
	}
	if err := pb.ValidateSHA256Hex(sha256hex); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if maxSize < 0 {
		return fmt.Errorf("p2pnet: FetchWeights maxSize = %d, want >= 0", maxSize)
	}
	want, _ := hex.DecodeString(sha256hex) // validated above

	ctx, stopCall := h.callContext(ctx)
	defer stopCall()
	// Connecting and opening the stream get the same allowance as a chunk.
	dialCtx, cancelDial := context.WithTimeout(ctx, h.cfg.StreamTimeout)
	s, err := h.openStream(dialCtx, from, WeightsProtocol)
	cancelDial()
	if err != nil {
		return h.callError(ctx, "fetching weights from", from.ID, err)
	}
	stopReset := context.AfterFunc(ctx, func() { s.Reset() })
	defer stopReset()
	if err := h.receiveWeights(ctx, s, &pb.WeightsRequest{Sha256: sha256hex}, want, maxSize, w); err != nil {
		s.Reset()
		return h.callError(ctx, "fetching weights from", from.ID, err)
	}
	s.Close()
	return nil
}

func (h *Host) receiveWeights(ctx context.Context, s network.Stream, req *pb.WeightsRequest, want []byte, maxSize int64, w io.Writer) error {
	// progress moves the stream's deadline: StreamTimeout from now, or the
	// context's deadline if sooner.
	progress := func() error {
		d := time.Now().Add(h.cfg.StreamTimeout)
		if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
			d = cd
		}
		return s.SetDeadline(d)
	}
	if err := progress(); err != nil {
		return err
	}
	if err := writeMsg(s, req); err != nil {
		return fmt.Errorf("sending request: %w", err)
	}

	sum := sha256.New()
	var got, total uint64
	var c pb.WeightsChunk
	for first := true; ; first = false {
		if err := progress(); err != nil {
			return err
		}
		// Reuse the data buffer across chunks; Unmarshal appends into it.
		buf := c.Data[:0]
		c.Reset()
		c.Data = buf
		if err := readMsg(s, maxChunkBytes, &c, nil); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %d of %d bytes arrived", ErrShortData, got, total)
			}
			return fmt.Errorf("reading chunk: %w", err)
		}
		if err := pb.ValidateWeightsChunk(&c); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		if c.Error != pb.ErrorCode_OK {
			return &RemoteError{Code: c.Error, Message: c.Message}
		}
		if first {
			total = c.TotalSize
			if total > uint64(maxSize) {
				return fmt.Errorf("%w: weights file is %d bytes, cap %d", ErrTooLarge, total, maxSize)
			}
		} else if c.TotalSize != total {
			return fmt.Errorf("%w: total_size changed from %d to %d", ErrBadMessage, total, c.TotalSize)
		}
		if c.Offset != got {
			return fmt.Errorf("%w: chunk at offset %d, expected %d", ErrShortData, c.Offset, got)
		}
		sum.Write(c.Data)
		if _, err := w.Write(c.Data); err != nil {
			return fmt.Errorf("p2pnet: writing weights: %w", err)
		}
		got += uint64(len(c.Data))
		if c.Last {
			break // validation guarantees got == total here
		}
	}
	if digest := sum.Sum(nil); !bytes.Equal(digest, want) {
		return fmt.Errorf("%w: %d bytes hash to %x, want %x", ErrHashMismatch, got, digest, want)
	}
	return nil
}

// handleWeights serves one WeightsProtocol stream.
func (h *Host) handleWeights(s network.Stream) {
	from := s.Conn().RemotePeer()
	log := h.log.With().Str("proto", WeightsProtocol).Stringer("peer", from).Logger()
	if err := s.Scope().SetService(weightsService); err != nil {
		log.Debug().Err(err).Msg("resource manager refused the stream")
		s.Reset()
		return
	}
	stopReset := context.AfterFunc(h.ctx, func() { s.Reset() })
	defer stopReset()
	if err := s.SetDeadline(time.Now().Add(h.cfg.StreamTimeout)); err != nil {
		s.Reset()
		return
	}
	var req pb.WeightsRequest
	err := readMsg(s, maxWeightsRequestBytes, &req, nil)
	if err == nil {
		err = pb.ValidateWeightsRequest(&req)
	}
	if err != nil {
		log.Warn().Err(err).Msg("dropping bad weights request")
		s.Reset()
		return
	}
	log = log.With().Str("sha256", req.Sha256).Logger()

	fn := h.weightsSource()
	if fn == nil {
		h.sendChunkError(s, log, pb.ErrorCode_NOT_FOUND, "this peer serves no weights")
		return
	}
	r, size, ok, err := openSource(fn, req.Sha256)
	switch {
	case err != nil:
		log.Error().Err(err).Msg("weights source failed")
		h.sendChunkError(s, log, pb.ErrorCode_INTERNAL, "weights source failed")
		return
	case !ok:
		h.sendChunkError(s, log, pb.ErrorCode_NOT_FOUND, "no such weights file")
		return
	}
	defer r.Close()
	if size < 0 {
		log.Error().Int64("size", size).Msg("weights source reported a negative size")
		h.sendChunkError(s, log, pb.ErrorCode_INTERNAL, "weights source failed")
		return
	}
	if err := h.sendChunks(s, r, uint64(size)); err != nil {
		if errors.Is(err, errSource) {
			log.Error().Err(err).Msg("reading weights file")
			h.sendChunkError(s, log, pb.ErrorCode_INTERNAL, "reading the weights file failed")
			return
		}
		log.Debug().Err(err).Msg("sending weights")
		s.Reset()
		return
	}
	s.Close()
	log.Debug().Uint64("bytes", uint64(size)).Msg("sent weights")
}

// errSource marks a failure of the WeightsSource's reader, as opposed to the
// stream's.
var errSource = errors.New("weights source")

func (h *Host) sendChunks(s network.Stream, r io.Reader, size uint64) error {
	buf := make([]byte, min(uint64(h.cfg.ChunkSize), size))
	var off uint64
	for {
		n := min(uint64(len(buf)), size-off)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("%w: at %d of %d bytes: %v", errSource, off, size, err)
		}
		last := off+n == size
		// A progress deadline: a reader that stops reading stalls this write.
		if err := s.SetWriteDeadline(time.Now().Add(h.cfg.StreamTimeout)); err != nil {
			return err
		}
		if err := writeMsg(s, &pb.WeightsChunk{TotalSize: size, Offset: off, Data: buf[:n], Last: last}); err != nil {
			return err
		}
		off += n
		if last {
			return nil
		}
	}
}

func (h *Host) sendChunkError(s network.Stream, log zerolog.Logger, code pb.ErrorCode, msg string) {
	if err := writeMsg(s, &pb.WeightsChunk{Error: code, Message: msg}); err != nil {
		log.Debug().Err(err).Msg("sending weights error")
		s.Reset()
		return
	}
	s.Close()
}

// openSource calls the source, turning a panic into an error.
func openSource(fn WeightsSource, sha string) (r io.ReadCloser, size int64, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, size, ok = nil, 0, false
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	r, size, ok = fn(sha)
	if ok && r == nil {
		return nil, 0, false, errors.New("source reported ok with a nil reader")
	}
	return r, size, ok, nil
}
