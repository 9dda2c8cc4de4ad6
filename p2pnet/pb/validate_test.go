package pb

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func validRequest() *InferRequest {
	return &InferRequest{
		RequestId:      "req-1",
		VariantId:      "v96x0.35",
		K:              5,
		DeadlineUnixMs: 1_700_000_000_000,
		Input:          &InferRequest_EncodedImage{EncodedImage: []byte("\x89PNG\r\n\x1a\n...")},
	}
}

func validAnswer() *InferAnswer {
	return &InferAnswer{
		RequestId:   "req-1",
		VariantId:   "v96x0.35",
		ModelSha256: bytes.Repeat([]byte{0xab}, SHA256Len),
		Indices:     []int32{3, 7, 1},
		Probs:       []float32{0.6, 0.2, 0.1},
		ComputeUs:   1234,
	}
}

func validMeta(variants int) *NodeMeta {
	m := &NodeMeta{
		Version:         MetaVersion,
		PeerId:          "12D3KooWGzBkD2xFn1QDTAPq7vxB8ehjG7D6RHT2HFaxV8vYYmEk", // 52 bytes, like every Ed25519 ID
		Libp2PPort:      7950,
		Speed:           123.5,
		Load:            0.75,
		SoftwareVersion: "v1.2.3-45-g0123abcd-dirty",
		MemoryBudget:    2 << 30,
		FamilyDigest:    bytes.Repeat([]byte{0xcd}, FamilyDigestLen),
	}
	for i := 0; i < variants; i++ {
		m.Held = SetHeld(m.Held, i)
		m.Variants = append(m.Variants, &ServedVariant{
			VariantId:   "r224-w0.35-" + string(rune('a'+i)) + "-xxxxxxxx", // 22 bytes
			ModelSha256: bytes.Repeat([]byte{byte(i + 1)}, SHA256Len),
		})
	}
	return m
}

func TestValidateInferRequest(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *InferRequest)
		ok     bool
	}{
		{"valid encoded", func(*InferRequest) {}, true},
		{"valid raw", func(r *InferRequest) {
			r.Input = &InferRequest_Raw{Raw: &RawImage{Width: 2, Height: 3, Channels: 3, Pixels: make([]byte, 18)}}
		}, true},
		{"k max", func(r *InferRequest) { r.K = MaxK }, true},
		{"empty request id", func(r *InferRequest) { r.RequestId = "" }, false},
		{"long request id", func(r *InferRequest) { r.RequestId = strings.Repeat("x", MaxIDLen+1) }, false},
		{"request id not utf8", func(r *InferRequest) { r.RequestId = "\xff" }, false},
		{"empty variant", func(r *InferRequest) { r.VariantId = "" }, false},
		{"k zero", func(r *InferRequest) { r.K = 0 }, false},
		{"k too big", func(r *InferRequest) { r.K = MaxK + 1 }, false},
		{"no deadline", func(r *InferRequest) { r.DeadlineUnixMs = 0 }, false},
		{"negative deadline", func(r *InferRequest) { r.DeadlineUnixMs = -5 }, false},
		{"timeout at the cap", func(r *InferRequest) { r.TimeoutMs = MaxTimeoutMs }, true},
		{"timeout over the cap", func(r *InferRequest) { r.TimeoutMs = MaxTimeoutMs + 1 }, false},
		{"no input", func(r *InferRequest) { r.Input = nil }, false},
		{"empty image", func(r *InferRequest) { r.Input = &InferRequest_EncodedImage{} }, false},
		{"nil raw", func(r *InferRequest) { r.Input = &InferRequest_Raw{} }, false},
		{"raw short pixels", func(r *InferRequest) {
			r.Input = &InferRequest_Raw{Raw: &RawImage{Width: 2, Height: 3, Channels: 3, Pixels: make([]byte, 17)}}
		}, false},
		{"raw two channels", func(r *InferRequest) {
			r.Input = &InferRequest_Raw{Raw: &RawImage{Width: 2, Height: 2, Channels: 2, Pixels: make([]byte, 8)}}
		}, false},
		{"raw zero width", func(r *InferRequest) {
			r.Input = &InferRequest_Raw{Raw: &RawImage{Width: 0, Height: 2, Channels: 1}}
		}, false},
		{"raw huge sides", func(r *InferRequest) {
			r.Input = &InferRequest_Raw{Raw: &RawImage{Width: math.MaxUint32, Height: math.MaxUint32, Channels: 4}}
		}, false},
		{"valid resized", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 2, Rgb: []float32{0, 1.5, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11}}}
		}, true},
		{"nil resized", func(r *InferRequest) { r.Input = &InferRequest_Resized{} }, false},
		{"resized zero side", func(r *InferRequest) { r.Input = &InferRequest_Resized{Resized: &ResizedImage{}} }, false},
		{"resized huge side", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: math.MaxUint32}}
		}, false},
		{"resized short", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{1, 2}}}
		}, false},
		{"resized NaN", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{1, float32(math.NaN()), 2}}}
		}, false},
		{"resized a hair over 255", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{1, 255.00008, 2}}}
		}, true},
		{"resized over 256", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{1, 256.5, 2}}}
		}, false},
		{"resized negative", func(r *InferRequest) {
			r.Input = &InferRequest_Resized{Resized: &ResizedImage{Side: 1, Rgb: []float32{-1, 0, 2}}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRequest()
			tt.modify(r)
			err := ValidateInferRequest(r)
			if got := err == nil; got != tt.ok {
				t.Fatalf("ValidateInferRequest: got err %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
	if err := ValidateInferRequest(nil); err == nil {
		t.Error("nil request: got nil error")
	}
}

func TestValidateInferAnswer(t *testing.T) {
	tests := []struct {
		name   string
		modify func(a *InferAnswer)
		ok     bool
	}{
		{"valid", func(*InferAnswer) {}, true},
		{"busy without result", func(a *InferAnswer) {
			*a = InferAnswer{RequestId: "req-1", Error: ErrorCode_BUSY, Message: "queue full"}
		}, true},
		{"error with result", func(a *InferAnswer) { a.Error = ErrorCode_INTERNAL }, false},
		{"unknown error code", func(a *InferAnswer) {
			*a = InferAnswer{RequestId: "req-1", Error: ErrorCode(99)}
		}, false},
		{"no request id", func(a *InferAnswer) { a.RequestId = "" }, false},
		{"short hash", func(a *InferAnswer) { a.ModelSha256 = a.ModelSha256[:31] }, false},
		{"no indices", func(a *InferAnswer) { a.Indices, a.Probs = nil, nil }, false},
		{"length mismatch", func(a *InferAnswer) { a.Probs = a.Probs[:2] }, false},
		{"negative index", func(a *InferAnswer) { a.Indices[1] = -1 }, false},
		{"huge index", func(a *InferAnswer) { a.Indices[1] = MaxClassIndex + 1 }, false},
		{"duplicate index", func(a *InferAnswer) { a.Indices[2] = 3 }, false},
		{"NaN prob", func(a *InferAnswer) { a.Probs[0] = float32(math.NaN()) }, false},
		{"prob above one", func(a *InferAnswer) { a.Probs[0] = 1.5 }, false},
		{"negative prob", func(a *InferAnswer) { a.Probs[0] = -0.1 }, false},
		{"long message", func(a *InferAnswer) { a.Message = strings.Repeat("m", MaxMessageLen+1) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validAnswer()
			tt.modify(a)
			err := ValidateInferAnswer(a)
			if got := err == nil; got != tt.ok {
				t.Fatalf("ValidateInferAnswer: got err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestValidateInferAnswerFor(t *testing.T) {
	req := validRequest()
	req.K = 3
	if err := ValidateInferAnswerFor(req, validAnswer()); err != nil {
		t.Fatalf("matching answer: %v", err)
	}
	a := validAnswer()
	a.RequestId = "req-2"
	if err := ValidateInferAnswerFor(req, a); err == nil {
		t.Error("answer to another request: got nil error")
	}
	a = validAnswer()
	a.VariantId = "other"
	if err := ValidateInferAnswerFor(req, a); err == nil {
		t.Error("answer from another variant: got nil error")
	}
	req.K = 2
	if err := ValidateInferAnswerFor(req, validAnswer()); err == nil {
		t.Error("3 indices for k=2: got nil error")
	}
}

func TestValidateWeights(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		hash string
		ok   bool
	}{
		{good, true},
		{strings.ToUpper(good), false},
		{good[:63], false},
		{good + "0", false},
		{strings.Repeat("g", 64), false},
		{"", false},
	} {
		err := ValidateWeightsRequest(&WeightsRequest{Sha256: tt.hash})
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateWeightsRequest(%q): got err %v, want ok=%v", tt.hash, err, tt.ok)
		}
	}

	chunks := []struct {
		name string
		c    WeightsChunk
		ok   bool
	}{
		{"first", WeightsChunk{TotalSize: 10, Offset: 0, Data: make([]byte, 4)}, true},
		{"last", WeightsChunk{TotalSize: 10, Offset: 6, Data: make([]byte, 4), Last: true}, true},
		{"empty file", WeightsChunk{TotalSize: 0, Last: true}, true},
		{"not found", WeightsChunk{Error: ErrorCode_NOT_FOUND, Message: "no such file"}, true},
		{"error with data", WeightsChunk{Error: ErrorCode_INTERNAL, Data: []byte{1}}, false},
		{"past end", WeightsChunk{TotalSize: 10, Offset: 8, Data: make([]byte, 4)}, false},
		{"offset overflow", WeightsChunk{TotalSize: math.MaxUint64, Offset: math.MaxUint64, Data: make([]byte, 4)}, false},
		{"last short", WeightsChunk{TotalSize: 10, Offset: 0, Data: make([]byte, 4), Last: true}, false},
		{"empty middle", WeightsChunk{TotalSize: 10, Offset: 4}, false},
		{"too much data", WeightsChunk{TotalSize: 2 * MaxChunkData, Data: make([]byte, MaxChunkData+1)}, false},
		{"unknown code", WeightsChunk{Error: 42}, false},
	}
	for _, tt := range chunks {
		err := ValidateWeightsChunk(&tt.c)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateWeightsChunk(%s): got err %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestMarshalMetaSize(t *testing.T) {
	// A peer serving six variants, with realistic field sizes, must fit,
	// holdings included.
	m := validMeta(6)
	b, err := MarshalMeta(m)
	if err != nil {
		t.Fatalf("MarshalMeta(6 variants): %v", err)
	}
	t.Logf("6 variants encode to %d bytes (limit %d)", len(b), MaxMetaSize)
	back, err := UnmarshalMeta(b)
	if err != nil {
		t.Fatalf("UnmarshalMeta: %v", err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip: got %v, want %v", back, m)
	}

	// Ten variants do not fit: a clear error, not a truncated message.
	_, err = MarshalMeta(validMeta(10))
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("MarshalMeta(10 variants): got %v, want ErrMetaTooLarge", err)
	}
	if _, err := UnmarshalMeta(make([]byte, MaxMetaSize+1)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("UnmarshalMeta(513 bytes): got %v, want ErrMetaTooLarge", err)
	}
}

func TestValidateNodeMeta(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *NodeMeta)
		ok     bool
	}{
		{"valid", func(*NodeMeta) {}, true},
		{"no variants", func(m *NodeMeta) { m.Variants = nil }, true},
		{"future version", func(m *NodeMeta) { m.Version = 2 }, false},
		{"no peer id", func(m *NodeMeta) { m.PeerId = "" }, false},
		{"port zero", func(m *NodeMeta) { m.Libp2PPort = 0 }, false},
		{"port too big", func(m *NodeMeta) { m.Libp2PPort = 70000 }, false},
		{"short hash", func(m *NodeMeta) { m.Variants[0].ModelSha256 = []byte{1} }, false},
		{"duplicate variant", func(m *NodeMeta) { m.Variants[1].VariantId = m.Variants[0].VariantId }, false},
		{"nil variant", func(m *NodeMeta) { m.Variants[0] = nil }, false},
		{"NaN speed", func(m *NodeMeta) { m.Speed = float32(math.NaN()) }, false},
		{"infinite load", func(m *NodeMeta) { m.Load = float32(math.Inf(1)) }, false},
		{"negative load", func(m *NodeMeta) { m.Load = -1 }, false},
		{"nothing held, no digest", func(m *NodeMeta) { m.Held, m.FamilyDigest = nil, nil }, true},
		{"256 variants held", func(m *NodeMeta) { m.Held = SetHeld(m.Held, 255) }, true},
		{"257 variants held", func(m *NodeMeta) { m.Held = make([]byte, MaxHeldLen+1) }, false},
		{"held without digest", func(m *NodeMeta) { m.FamilyDigest = nil }, false},
		{"short digest", func(m *NodeMeta) { m.FamilyDigest = m.FamilyDigest[:4] }, false},
		{"long digest", func(m *NodeMeta) { m.FamilyDigest = make([]byte, 32) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMeta(2)
			tt.modify(m)
			err := ValidateNodeMeta(m)
			if got := err == nil; got != tt.ok {
				t.Fatalf("ValidateNodeMeta: got err %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestValidateSessionFrame(t *testing.T) {
	bad := validRequest()
	bad.K = 0
	for _, tt := range []struct {
		name string
		f    *SessionFrame
		ok   bool
	}{
		{"request", &SessionFrame{Call: 1, Request: validRequest()}, true},
		{"cancel", &SessionFrame{Call: 1, Cancel: true}, true},
		{"nil", nil, false},
		{"neither", &SessionFrame{Call: 1}, false},
		{"both", &SessionFrame{Call: 1, Request: validRequest(), Cancel: true}, false},
		{"invalid request", &SessionFrame{Call: 1, Request: bad}, false},
	} {
		if err := ValidateSessionFrame(tt.f); (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if err := ValidateSessionAnswer(&SessionAnswer{Call: 1, Answer: validAnswer()}); err != nil {
		t.Errorf("valid session answer: %v", err)
	}
	if ValidateSessionAnswer(&SessionAnswer{Call: 1}) == nil || ValidateSessionAnswer(nil) == nil {
		t.Error("a session answer without an answer passed")
	}
}

func TestHeldBitmap(t *testing.T) {
	var held []byte
	for _, i := range []int{0, 3, 9, 255} {
		held = SetHeld(held, i)
	}
	if len(held) != MaxHeldLen {
		t.Errorf("bitmap with bit 255 set is %d bytes, want %d", len(held), MaxHeldLen)
	}
	for i := -1; i < 300; i++ {
		want := i == 0 || i == 3 || i == 9 || i == 255
		if got := Holds(held, i); got != want {
			t.Errorf("Holds(%d) = %v, want %v", i, got, want)
		}
	}
	if held[1] != 0x02 || held[0] != 0x09 {
		t.Errorf("bytes 0 and 1 are %#x %#x, want 0x09 0x02 (bit i%%8 from the least significant)", held[0], held[1])
	}
	a := FamilyDigest([][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)})
	b := FamilyDigest([][]byte{bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32)})
	if len(a) != FamilyDigestLen || bytes.Equal(a, b) {
		t.Errorf("family digests %x and %x: want %d bytes, different for another order", a, b, FamilyDigestLen)
	}
}
