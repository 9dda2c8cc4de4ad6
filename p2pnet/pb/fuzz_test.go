package pb

import (
	"bytes"
	"testing"
)

// Each fuzz target decodes arbitrary bytes and validates the result: neither
// may panic, and whatever passes validation must re-encode and decode to a
// message that passes again. The seeds are valid encodings.

func mustMarshal(tb testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	tb.Helper()
	b, err := m.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func FuzzInferRequest(f *testing.F) {
	f.Add(mustMarshal(f, validRequest()))
	raw := validRequest()
	raw.Input = &InferRequest_Raw{Raw: &RawImage{Width: 2, Height: 2, Channels: 1, Pixels: []byte{1, 2, 3, 4}}}
	f.Add(mustMarshal(f, raw))
	resized := validRequest()
	resized.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{0, 127.5, 255}}}
	f.Add(mustMarshal(f, resized))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r InferRequest
		if err := r.Unmarshal(b); err != nil {
			return
		}
		if ValidateInferRequest(&r) != nil {
			return
		}
		var again InferRequest
		if err := again.Unmarshal(mustMarshal(t, &r)); err != nil {
			t.Fatalf("re-decoding a valid request: %v", err)
		}
		if err := ValidateInferRequest(&again); err != nil {
			t.Fatalf("re-decoded request no longer valid: %v", err)
		}
	})
}

func FuzzInferAnswer(f *testing.F) {
	f.Add(mustMarshal(f, validAnswer()))
	f.Add(mustMarshal(f, &InferAnswer{RequestId: "r", Error: ErrorCode_BUSY, Message: "busy"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a InferAnswer
		if err := a.Unmarshal(b); err != nil {
			return
		}
		if ValidateInferAnswer(&a) != nil {
			return
		}
		_ = ValidateInferAnswerFor(validRequest(), &a)
		var again InferAnswer
		if err := again.Unmarshal(mustMarshal(t, &a)); err != nil {
			t.Fatalf("re-decoding a valid answer: %v", err)
		}
		if err := ValidateInferAnswer(&again); err != nil {
			t.Fatalf("re-decoded answer no longer valid: %v", err)
		}
	})
}

func FuzzSessionFrame(f *testing.F) {
	f.Add(mustMarshal(f, &SessionFrame{Call: 7, Request: validRequest()}))
	f.Add(mustMarshal(f, &SessionFrame{Call: 8, Cancel: true}))
	f.Add(mustMarshal(f, &SessionAnswer{Call: 7, Answer: validAnswer()}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr SessionFrame
		if fr.Unmarshal(b) == nil && ValidateSessionFrame(&fr) == nil {
			var again SessionFrame
			if err := again.Unmarshal(mustMarshal(t, &fr)); err != nil {
				t.Fatalf("re-decoding a valid frame: %v", err)
			}
			if err := ValidateSessionFrame(&again); err != nil {
				t.Fatalf("re-decoded frame no longer valid: %v", err)
			}
		}
		var a SessionAnswer
		if a.Unmarshal(b) == nil && ValidateSessionAnswer(&a) == nil {
			var again SessionAnswer
			if err := again.Unmarshal(mustMarshal(t, &a)); err != nil {
				t.Fatalf("re-decoding a valid session answer: %v", err)
			}
			if err := ValidateSessionAnswer(&again); err != nil {
				t.Fatalf("re-decoded session answer no longer valid: %v", err)
			}
		}
	})
}

func FuzzWeightsChunk(f *testing.F) {
	f.Add(mustMarshal(f, &WeightsChunk{TotalSize: 10, Offset: 6, Data: []byte("abcd"), Last: true}))
	f.Add(mustMarshal(f, &WeightsChunk{Error: ErrorCode_NOT_FOUND, Message: "no"}))
	f.Add(mustMarshal(f, &WeightsRequest{Sha256: string(bytes.Repeat([]byte("a"), 64))}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c WeightsChunk
		if err := c.Unmarshal(b); err == nil && ValidateWeightsChunk(&c) == nil {
			if c.Error == ErrorCode_OK && c.Offset+uint64(len(c.Data)) > c.TotalSize {
				t.Fatalf("valid chunk runs past the file: %+v", c)
			}
		}
		// The request travels on the same protocol; fuzz its decoder too.
		var r WeightsRequest
		if err := r.Unmarshal(b); err == nil {
			_ = ValidateWeightsRequest(&r)
		}
	})
}

func FuzzNodeMeta(f *testing.F) {
	for _, n := range []int{0, 1, 6} {
		b, err := MarshalMeta(validMeta(n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Holdings at their largest, and a bitmap without its digest.
	wide := validMeta(1)
	wide.Held = SetHeld(wide.Held, 8*MaxHeldLen-1)
	f.Add(mustMarshal(f, wide))
	wide.FamilyDigest = nil
	f.Add(mustMarshal(f, wide))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := UnmarshalMeta(b)
		if err != nil {
			return
		}
		out, err := MarshalMeta(m)
		if err != nil {
			t.Fatalf("valid metadata does not re-encode: %v", err)
		}
		if len(out) > MaxMetaSize {
			t.Fatalf("re-encoded metadata is %d bytes", len(out))
		}
		for i := range 8 * len(m.Held) {
			_ = Holds(m.Held, i)
		}
	})
}
