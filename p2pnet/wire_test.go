package p2pnet

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/varpar/varpar/p2pnet/pb"
)

func TestReadMsg(t *testing.T) {
	var buf bytes.Buffer
	req := testRequestWithDeadline()
	if err := writeMsg(&buf, req); err != nil {
		t.Fatal(err)
	}
	if err := writeMsg(&buf, req); err != nil {
		t.Fatal(err)
	}
	size := req.Size()
	// Two messages back to back: the reader takes exactly one each time.
	for i := 0; i < 2; i++ {
		var got pb.InferRequest
		if err := readMsg(&buf, size, &got, nil); err != nil || got.RequestId != req.RequestId {
			t.Fatalf("message %d: got %v, %v", i, &got, err)
		}
	}
	var got pb.InferRequest
	if err := readMsg(&buf, size, &got, nil); err != io.EOF {
		t.Fatalf("at end of stream: got %v, want io.EOF", err)
	}

	tests := []struct {
		name string
		b    []byte
		max  int
		want error
	}{
		{"over cap", []byte{0x80, 0x01}, 127, ErrTooLarge},
		{"overlong varint", bytes.Repeat([]byte{0x80}, 11), 1 << 20, ErrBadMessage},
		{"cut in length", []byte{0x80}, 100, io.ErrUnexpectedEOF},
		{"cut in body", []byte{5, 1, 2}, 100, io.ErrUnexpectedEOF},
		{"bad body", []byte{2, 0xff, 0xff}, 100, ErrBadMessage},
	}
	for _, tt := range tests {
		var m pb.InferRequest
		if err := readMsg(bytes.NewReader(tt.b), tt.max, &m, nil); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}

	// A refused reservation stops the read before the body is allocated.
	refuse := errors.New("no memory")
	buf.Reset()
	writeMsg(&buf, req)
	if err := readMsg(&buf, size, &got, func(n int) error {
		if n != size {
			t.Errorf("reserve(%d), want %d", n, size)
		}
		return refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("refused reservation: got %v", err)
	}
}

// FuzzReadMsg feeds arbitrary streams to the framing and the decoders behind
// it, as the handlers do: nothing may panic, and nothing over the cap may be
// allocated.
func FuzzReadMsg(f *testing.F) {
	var buf bytes.Buffer
	writeMsg(&buf, testRequestWithDeadline())
	f.Add(buf.Bytes())
	buf.Reset()
	writeMsg(&buf, &pb.WeightsChunk{TotalSize: 3, Data: []byte{1, 2, 3}, Last: true})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 4096
		reserve := func(n int) error {
			if n > max {
				t.Fatalf("reserve(%d) over the cap %d", n, max)
			}
			return nil
		}
		var req pb.InferRequest
		if readMsg(bytes.NewReader(b), max, &req, reserve) == nil {
			_ = pb.ValidateInferRequest(&req)
		}
		var ans pb.InferAnswer
		if readMsg(bytes.NewReader(b), max, &ans, reserve) == nil {
			_ = pb.ValidateInferAnswer(&ans)
		}
		var c pb.WeightsChunk
		if readMsg(bytes.NewReader(b), max, &c, reserve) == nil {
			_ = pb.ValidateWeightsChunk(&c)
		}
	})
}
