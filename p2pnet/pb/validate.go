package pb

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Limits that every decoded message is held to. They are part of the
// protocol: a peer never sends a message that breaks them, and drops one that
// does.
const (
	MaxIDLen       = 64        // request and variant IDs, bytes
	MaxMessageLen  = 1024      // error messages, bytes
	MaxK           = 1024      // largest k in a request
	MaxTimeoutMs   = 600_000   // largest timeout_ms in a request (10 minutes)
	MaxClassIndex  = 1<<24 - 1 // largest class index in an answer
	MaxImageSide   = 8192      // largest width or height of a RawImage
	MaxResizedSide = 1024      // largest side of a ResizedImage
	MaxChunkData   = 1 << 20   // largest data field of a WeightsChunk
	SHA256Len      = 32        // raw SHA-256 digest, bytes

	// MaxMetaSize is memberlist's limit on node metadata.
	MaxMetaSize = 512
	// MetaVersion is the NodeMeta schema this package writes.
	MetaVersion = 1
	// MaxVersionLen bounds NodeMeta.software_version, bytes.
	MaxVersionLen = 64
	// MaxPeerIDLen bounds NodeMeta.peer_id; an Ed25519 peer ID is 52 bytes.
	MaxPeerIDLen = 128
)

// ErrInvalid is wrapped by every validation error. The text after it names
// the message, the field and what was wrong.
var ErrInvalid = errors.New("pb: invalid message")

// ErrMetaTooLarge is returned by MarshalMeta and UnmarshalMeta for metadata
// over MaxMetaSize bytes.
var ErrMetaTooLarge = errors.New("pb: node metadata over 512 bytes")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func checkID(msg, field, s string, required bool) error {
	switch {
	case required && s == "":
		return invalid("%s.%s is empty", msg, field)
	case len(s) > MaxIDLen:
		return invalid("%s.%s is %d bytes, at most %d allowed", msg, field, len(s), MaxIDLen)
	case !utf8.ValidString(s):
		return invalid("%s.%s is not UTF-8", msg, field)
	}
	return nil
}

func checkMessage(msg, s string) error {
	if len(s) > MaxMessageLen {
		return invalid("%s.message is %d bytes, at most %d allowed", msg, len(s), MaxMessageLen)
	}
	if !utf8.ValidString(s) {
		return invalid("%s.message is not UTF-8", msg)
	}
	return nil
}

func checkCode(msg string, c ErrorCode) error {
	if _, ok := ErrorCode_name[int32(c)]; !ok {
		return invalid("%s.error = %d is not a known code", msg, int32(c))
	}
	return nil
}

// ValidateInferRequest checks a request's IDs, k, deadline and input. It does
// not look at the clock: whether the deadline has passed is the receiver's
// business.
func ValidateInferRequest(r *InferRequest) error {
	if r == nil {
		return invalid("InferRequest is nil")
	}
	if err := checkID("InferRequest", "request_id", r.RequestId, true); err != nil {
		return err
	}
	if err := checkID("InferRequest", "variant_id", r.VariantId, true); err != nil {
		return err
	}
	if r.K < 1 || r.K > MaxK {
		return invalid("InferRequest.k = %d, want 1..%d", r.K, MaxK)
	}
	if r.DeadlineUnixMs <= 0 {
		return invalid("InferRequest.deadline_unix_ms = %d, want a time after the epoch", r.DeadlineUnixMs)
	}
	if r.TimeoutMs > MaxTimeoutMs {
		return invalid("InferRequest.timeout_ms = %d, want at most %d", r.TimeoutMs, MaxTimeoutMs)
	}
	switch in := r.Input.(type) {
	case *InferRequest_EncodedImage:
		if len(in.EncodedImage) == 0 {
			return invalid("InferRequest.encoded_image is empty")
		}
	case *InferRequest_Raw:
		return ValidateRawImage(in.Raw)
	case *InferRequest_Resized:
		return ValidateResizedImage(in.Resized)
	case nil:
		return invalid("InferRequest has no input")
	default:
		return invalid("InferRequest.input has unknown type %T", in)
	}
	return nil
}

// ValidateRawImage checks that an image's dimensions are in range and that
// its pixels fill them exactly.
func ValidateRawImage(im *RawImage) error {
	if im == nil {
		return invalid("InferRequest.raw is nil")
	}
	if im.Width < 1 || im.Width > MaxImageSide || im.Height < 1 || im.Height > MaxImageSide {
		return invalid("RawImage is %dx%d, each side must be 1..%d", im.Width, im.Height, MaxImageSide)
	}
	switch im.Channels {
	case 1, 3, 4:
	default:
		return invalid("RawImage.channels = %d, want 1, 3 or 4", im.Channels)
	}
	// Sides are at most 2^13 and channels at most 4, so the product fits in
	// 28 bits: no overflow on any platform.
	want := int(im.Width) * int(im.Height) * int(im.Channels)
	if len(im.Pixels) != want {
		return invalid("RawImage.pixels has %d bytes, %dx%dx%d needs %d",
			len(im.Pixels), im.Width, im.Height, im.Channels, want)
	}
	return nil
}

// ValidateResizedImage checks that an image's side is in range, that its
// values fill it exactly and that each is a number in [0, 256]: a resize of
// 8-bit pixels gives [0, 255], but its float32 filter weights sum to 1 only
// up to rounding, so a white image can come out at 255.00008.
func ValidateResizedImage(im *ResizedImage) error {
	if im == nil {
		return invalid("InferRequest.resized is nil")
	}
	if im.Side < 1 || im.Side > MaxResizedSide {
		return invalid("ResizedImage.side = %d, want 1..%d", im.Side, MaxResizedSide)
	}
	if want := int(im.Side) * int(im.Side) * 3; len(im.Rgb) != want {
		return invalid("ResizedImage.rgb has %d values, %dx%dx3 needs %d", len(im.Rgb), im.Side, im.Side, want)
	}
	for i, v := range im.Rgb {
		// The negated test also rejects NaN.
		if !(v >= 0 && v <= 256) {
			return invalid("ResizedImage.rgb[%d] = %v, want 0..256", i, v)
		}
	}
	return nil
}

// ValidateInferAnswer checks an answer on its own: a result (error OK) has a
// 32-byte model hash and 1..MaxK distinct class indices, each with a
// probability in [0, 1]; an error answer carries no result.
func ValidateInferAnswer(a *InferAnswer) error {
	if a == nil {
		return invalid("InferAnswer is nil")
	}
	if err := checkID("InferAnswer", "request_id", a.RequestId, true); err != nil {
		return err
	}
	if err := checkID("InferAnswer", "variant_id", a.VariantId, false); err != nil {
		return err
	}
	if err := checkCode("InferAnswer", a.Error); err != nil {
		return err
	}
	if err := checkMessage("InferAnswer", a.Message); err != nil {
		return err
	}
	if a.Error != ErrorCode_OK {
		if len(a.Indices) != 0 || len(a.Probs) != 0 {
			return invalid("InferAnswer with error %s carries %d indices", a.Error, len(a.Indices))
		}
		if n := len(a.ModelSha256); n != 0 && n != SHA256Len {
			return invalid("InferAnswer.model_sha256 is %d bytes, want %d", n, SHA256Len)
		}
		return nil
	}
	if a.VariantId == "" {
		return invalid("InferAnswer.variant_id is empty")
	}
	if n := len(a.ModelSha256); n != SHA256Len {
		return invalid("InferAnswer.model_sha256 is %d bytes, want %d", n, SHA256Len)
	}
	n := len(a.Indices)
	if n < 1 || n > MaxK {
		return invalid("InferAnswer has %d indices, want 1..%d", n, MaxK)
	}
	if len(a.Probs) != n {
		return invalid("InferAnswer has %d indices but %d probs", n, len(a.Probs))
	}
	seen := make(map[int32]struct{}, n)
	for i, c := range a.Indices {
		if c < 0 || c > MaxClassIndex {
			return invalid("InferAnswer.indices[%d] = %d, want 0..%d", i, c, MaxClassIndex)
		}
		if _, dup := seen[c]; dup {
			return invalid("InferAnswer.indices[%d] = %d appears twice", i, c)
		}
		seen[c] = struct{}{}
	}
	for i, p := range a.Probs {
		// The negated test also rejects NaN.
		if !(p >= 0 && p <= 1) {
			return invalid("InferAnswer.probs[%d] = %v, want 0..1", i, p)
		}
	}
	return nil
}

// ValidateInferAnswerFor checks an answer and that it answers req: the same
// request ID, the requested variant, and no more than k classes.
func ValidateInferAnswerFor(req *InferRequest, a *InferAnswer) error {
	if err := ValidateInferAnswer(a); err != nil {
		return err
	}
	if a.RequestId != req.RequestId {
		return invalid("InferAnswer.request_id = %q, want %q", a.RequestId, req.RequestId)
	}
	if a.Error == ErrorCode_OK && a.VariantId != req.VariantId {
		return invalid("InferAnswer.variant_id = %q, want %q", a.VariantId, req.VariantId)
	}
	if uint64(len(a.Indices)) > uint64(req.K) {
		return invalid("InferAnswer has %d indices, request asked for k = %d", len(a.Indices), req.K)
	}
	return nil
}

// ValidateSessionFrame checks that f carries exactly one of a valid request
// and a cancellation.
func ValidateSessionFrame(f *SessionFrame) error {
	switch {
	case f == nil:
		return invalid("SessionFrame is nil")
	case f.Request != nil && f.Cancel:
		return invalid("SessionFrame %d has both a request and cancel", f.Call)
	case f.Cancel:
		return nil
	case f.Request == nil:
		return invalid("SessionFrame %d has neither a request nor cancel", f.Call)
	}
	return ValidateInferRequest(f.Request)
}

// ValidateSessionAnswer checks that a carries an answer. The answer itself
// is checked by its call, against its request (ValidateInferAnswerFor), so
// the session reader does not check it a second time.
func ValidateSessionAnswer(a *SessionAnswer) error {
	if a == nil || a.Answer == nil {
		return invalid("SessionAnswer without an answer")
	}
	return nil
}

// ValidateWeightsRequest checks that the hash is 64 lowercase hex digits.
func ValidateWeightsRequest(r *WeightsRequest) error {
	if r == nil {
		return invalid("WeightsRequest is nil")
	}
	return ValidateSHA256Hex(r.Sha256)
}

// ValidateSHA256Hex checks that s is a SHA-256 digest in lowercase hex.
func ValidateSHA256Hex(s string) error {
	if len(s) != 2*SHA256Len {
		return invalid("sha256 %q is %d characters, want %d lowercase hex digits", clip(s), len(s), 2*SHA256Len)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return invalid("sha256 %q has %q at %d, want lowercase hex", clip(s), c, i)
		}
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ValidateWeightsChunk checks one chunk on its own: its data lies inside the
// file, the last chunk ends the file, and an error chunk carries no data.
// Whether the chunk follows the previous one is the receiver's check.
func ValidateWeightsChunk(c *WeightsChunk) error {
	if c == nil {
		return invalid("WeightsChunk is nil")
	}
	if err := checkCode("WeightsChunk", c.Error); err != nil {
		return err
	}
	if err := checkMessage("WeightsChunk", c.Message); err != nil {
		return err
	}
	if c.Error != ErrorCode_OK {
		if len(c.Data) != 0 {
			return invalid("WeightsChunk with error %s carries %d bytes", c.Error, len(c.Data))
		}
		return nil
	}
	n := uint64(len(c.Data))
	if n > MaxChunkData {
		return invalid("WeightsChunk.data is %d bytes, at most %d allowed", n, MaxChunkData)
	}
	// Written as a subtraction so a huge offset cannot overflow.
	if c.Offset > c.TotalSize || n > c.TotalSize-c.Offset {
		return invalid("WeightsChunk covers %d+%d, past total_size %d", c.Offset, n, c.TotalSize)
	}
	if c.Last && c.Offset+n != c.TotalSize {
		return invalid("last WeightsChunk ends at %d, want total_size %d", c.Offset+n, c.TotalSize)
	}
	if !c.Last && n == 0 {
		return invalid("WeightsChunk at %d is empty and not last", c.Offset)
	}
	return nil
}

// ValidateNodeMeta checks metadata decoded from gossip. It accepts only
// MetaVersion; callers drop metadata of other versions.
func ValidateNodeMeta(m *NodeMeta) error {
	if m == nil {
		return invalid("NodeMeta is nil")
	}
	if m.Version != MetaVersion {
		return invalid("NodeMeta.version = %d, want %d", m.Version, MetaVersion)
	}
	if m.PeerId == "" || len(m.PeerId) > MaxPeerIDLen || !utf8.ValidString(m.PeerId) {
		return invalid("NodeMeta.peer_id %q is not a peer ID", clip(m.PeerId))
	}
	if m.Libp2PPort < 1 || m.Libp2PPort > math.MaxUint16 {
		return invalid("NodeMeta.libp2p_port = %d, want 1..65535", m.Libp2PPort)
	}
	seen := make(map[string]struct{}, len(m.Variants))
	for i, v := range m.Variants {
		if v == nil {
			return invalid("NodeMeta.variants[%d] is nil", i)
		}
		if err := checkID("NodeMeta", fmt.Sprintf("variants[%d].variant_id", i), v.VariantId, true); err != nil {
			return err
		}
		if _, dup := seen[v.VariantId]; dup {
			return invalid("NodeMeta.variants[%d] repeats variant %q", i, v.VariantId)
		}
		seen[v.VariantId] = struct{}{}
		if len(v.ModelSha256) != SHA256Len {
			return invalid("NodeMeta.variants[%d].model_sha256 is %d bytes, want %d", i, len(v.ModelSha256), SHA256Len)
		}
	}
	for i, id := range m.Pinned {
		if err := checkID("NodeMeta", fmt.Sprintf("pinned[%d]", i), id, true); err != nil {
			return err
		}
	}
	if !finiteNonNeg(m.Speed) {
		return invalid("NodeMeta.speed = %v, want a finite number >= 0", m.Speed)
	}
	if !finiteNonNeg(m.Load) {
		return invalid("NodeMeta.load = %v, want a finite number >= 0", m.Load)
	}
	if len(m.Held) > MaxHeldLen {
		return invalid("NodeMeta.held is %d bytes, at most %d allowed", len(m.Held), MaxHeldLen)
	}
	if n := len(m.FamilyDigest); n != 0 && n != FamilyDigestLen {
		return invalid("NodeMeta.family_digest is %d bytes, want %d", n, FamilyDigestLen)
	}
	if len(m.Held) > 0 && len(m.FamilyDigest) == 0 {
		return invalid("NodeMeta.held is set without family_digest")
	}
	if len(m.SoftwareVersion) > MaxVersionLen || !utf8.ValidString(m.SoftwareVersion) {
		return invalid("NodeMeta.software_version %q is not a version string of at most %d bytes",
			clip(m.SoftwareVersion), MaxVersionLen)
	}
	return nil
}

func finiteNonNeg(f float32) bool {
	return f >= 0 && !math.IsInf(float64(f), 1) // NaN fails f >= 0
}

// MarshalMeta validates m and encodes it for gossip, failing with
// ErrMetaTooLarge when the encoding exceeds MaxMetaSize.
func MarshalMeta(m *NodeMeta) ([]byte, error) {
	if err := ValidateNodeMeta(m); err != nil {
		return nil, err
	}
	if n := m.Size(); n > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes with %d variants", ErrMetaTooLarge, n, len(m.Variants))
	}
	return m.Marshal()
}

// UnmarshalMeta decodes and validates metadata received through gossip.
func UnmarshalMeta(b []byte) (*NodeMeta, error) {
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: got %d bytes", ErrMetaTooLarge, len(b))
	}
	m := new(NodeMeta)
	if err := m.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: NodeMeta: %v", ErrInvalid, err)
	}
	if err := ValidateNodeMeta(m); err != nil {
		return nil, err
	}
	return m, nil
}
