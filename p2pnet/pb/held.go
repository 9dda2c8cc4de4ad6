package pb

import "crypto/sha256"

// Sizes of NodeMeta's holdings fields.
const (
	// MaxHeldLen bounds NodeMeta.held: a bit per variant, 256 variants.
	MaxHeldLen = 32
	// FamilyDigestLen is the size of NodeMeta.family_digest.
	FamilyDigestLen = 8
)

// FamilyDigest is NodeMeta.family_digest for a family whose variants' weights
// have the SHA-256 digests shas (raw, 32 bytes each), in manifest order.
func FamilyDigest(shas [][]byte) []byte {
	h := sha256.New()
	for _, s := range shas {
		h.Write(s)
	}
	return h.Sum(nil)[:FamilyDigestLen]
}

// SetHeld returns held with the bit of variant i set, grown as needed.
// i must be in 0..8*MaxHeldLen-1.
func SetHeld(held []byte, i int) []byte {
	for len(held) <= i/8 {
		held = append(held, 0)
	}
	held[i/8] |= 1 << (i % 8)
	return held
}

// Holds reports whether the bitmap held has the bit of variant i set; bits
// past its end are clear.
func Holds(held []byte, i int) bool {
	return i >= 0 && i/8 < len(held) && held[i/8]&(1<<(i%8)) != 0
}
