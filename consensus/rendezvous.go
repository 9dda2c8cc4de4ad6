package consensus

import "math"

// rendezvous hashes the pair (member name, variant ID) to a number uniform
// in (0, 1). The hash is FNV-1a 64 over the name's length (8 bytes, little
// endian), the name and the ID, so that no two pairs feed it the same bytes
// (a plain separator could occur inside a name), followed by MurmurHash3's
// 64-bit finaliser: FNV-1a alone leaves pairs differing only in their last
// byte close together. It is a fixed function of its input, so every peer
// ranks every pair the same way; changing it reshuffles every plan.
func rendezvous(name, id string) float64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for n, i := uint64(len(name)), 0; i < 8; i++ {
		h = (h ^ n&0xff) * prime
		n >>= 8
	}
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	// The top 52 bits plus one half: exact in a float64, never 0 or 1.
	return (float64(h>>12) + 0.5) * 0x1p-52
}

// negLog returns -ln(u) for u in (0, 1], to within a few units in the last
// place, computed with IEEE-754 basic operations only, in a fixed order. Plans
// must come out the same on every peer, and math.Log does not promise that:
// amd64 has an assembly version and the compiler may fuse multiply-adds on
// arm64. Basic operations are correctly rounded everywhere, and the explicit
// float64 conversions below forbid fusing (per the Go spec).
func negLog(u float64) float64 {
	// u = f * 2^e with f in [sqrt(1/2), sqrt(2)), both steps exact.
	f, e := math.Frexp(u)
	if f < math.Sqrt2/2 {
		f *= 2
		e--
	}
	// ln f = 2 atanh(z) = 2 (z + z^3/3 + z^5/5 + ...), z = (f-1)/(f+1),
	// |z| <= 0.172: twelve terms take the series below 2^-60.
	z := (f - 1) / (f + 1)
	z2 := float64(z * z)
	p := 1.0 / 23
	p = float64(p*z2) + 1.0/21
	p = float64(p*z2) + 1.0/19
	p = float64(p*z2) + 1.0/17
	p = float64(p*z2) + 1.0/15
	p = float64(p*z2) + 1.0/13
	p = float64(p*z2) + 1.0/11
	p = float64(p*z2) + 1.0/9
	p = float64(p*z2) + 1.0/7
	p = float64(p*z2) + 1.0/5
	p = float64(p*z2) + 1.0/3
	p = float64(p*z2) + 1
	lnf := float64(float64(2*z) * p)
	return float64(float64(-e)*math.Ln2) - lnf
}
