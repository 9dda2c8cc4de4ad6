package p2pnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Messages travel as an unsigned varint length followed by the protobuf
// encoding (the framing of gogo's and go-msgio's delimited writers). The
// reader here differs from theirs in two ways that matter: it reads the
// length one byte at a time, so it never consumes bytes past the message
// (the infer handler watches the rest of the stream for a reset), and it
// reports an over-cap length as ErrTooLarge before allocating anything.

type unmarshaler interface{ Unmarshal([]byte) error }

type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

// byteReader reads one byte per call from a stream without buffering ahead.
type byteReader struct {
	r   io.Reader
	buf [1]byte
	err error // the last error of the stream itself
}

func (b *byteReader) ReadByte() (byte, error) {
	if _, err := io.ReadFull(b.r, b.buf[:]); err != nil {
		b.err = err
		return 0, err
	}
	return b.buf[0], nil
}

// readMsg reads one delimited message of at most max bytes into m. reserve,
// if not nil, is told the length before the body is allocated and may refuse
// it. A stream that ends before the first byte gives io.EOF; one that ends
// inside a message gives io.ErrUnexpectedEOF.
func readMsg(r io.Reader, max int, m unmarshaler, reserve func(n int) error) error {
	br := byteReader{r: r}
	n, err := binary.ReadUvarint(&br)
	if err != nil {
		if br.err == nil { // the bytes were read but make no varint
			return fmt.Errorf("%w: length prefix: %v", ErrBadMessage, err)
		}
		return err
	}
	if n > uint64(max) {
		return fmt.Errorf("%w: %d-byte message, cap %d", ErrTooLarge, n, max)
	}
	if reserve != nil {
		if err := reserve(int(n)); err != nil {
			return err
		}
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := m.Unmarshal(buf); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return nil
}

// writeMsg writes m with its length prefix in one Write, so it leaves in as
// few frames as the muxer allows.
func writeMsg(w io.Writer, m marshaler) error {
	size := m.Size()
	buf := make([]byte, binary.MaxVarintLen64+size)
	n := binary.PutUvarint(buf, uint64(size))
	if _, err := m.MarshalTo(buf[n:]); err != nil {
		return fmt.Errorf("p2pnet: encoding message: %w", err)
	}
	_, err := w.Write(buf[:n+size])
	return err
}
