package kernels

import "math"

// The pure-Go batch-norm loops: every architecture, and the reference the
// assembly in batchnorm_amd64.s is tested against.

func bnStatsGeneric(z []float32, c int, s, q []float64) {
	s, q = s[:c:c], q[:c:c]
	for ; len(z) >= c; z = z[c:] {
		row := z[:c:c]
		j := 0
		for ; j+4 <= c; j += 4 {
			v := row[j : j+4 : j+4]
			ss := s[j : j+4 : j+4]
			qq := q[j : j+4 : j+4]
			v0, v1, v2, v3 := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
			ss[0] += v0
			ss[1] += v1
			ss[2] += v2
			ss[3] += v3
			qq[0] += v0 * v0
			qq[1] += v1 * v1
			qq[2] += v2 * v2
			qq[3] += v3 * v3
		}
		for ; j < c; j++ {
			v := float64(row[j])
			s[j] += v
			q[j] += v * v
		}
	}
}

func bnApplyGeneric(z, y []float32, c int, scale, shift []float32, relu bool, res []float32) {
	scale, shift = scale[:c:c], shift[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		yr := y[r : r+c : r+c]
		switch {
		case res != nil:
			rr := res[r : r+c : r+c]
			for j := range zr {
				yr[j] = zr[j]*scale[j] + shift[j] + rr[j]
			}
		case relu:
			j := 0
			for ; j+4 <= c; j += 4 {
				v := zr[j : j+4 : j+4]
				o := yr[j : j+4 : j+4]
				sc := scale[j : j+4 : j+4]
				sh := shift[j : j+4 : j+4]
				o[0] = bnReLU6(v[0]*sc[0] + sh[0])
				o[1] = bnReLU6(v[1]*sc[1] + sh[1])
				o[2] = bnReLU6(v[2]*sc[2] + sh[2])
				o[3] = bnReLU6(v[3]*sc[3] + sh[3])
			}
			for ; j < c; j++ {
				yr[j] = bnReLU6(zr[j]*scale[j] + shift[j])
			}
		default:
			for j := range zr {
				yr[j] = zr[j]*scale[j] + shift[j]
			}
		}
	}
}

// bnReLU6 clamps v to [0, 6]; NaN stays NaN, as in the assembly (training
// has diverged then, and the loss shows it). The builtins compile to
// branch-free code: a branch on the sign of activations mispredicts half the
// time.
func bnReLU6(v float32) float32 { return max(0, min(v, 6)) }

// bnMask is all ones if 0 < p < 6 and zero otherwise (NaN included), without
// a branch: ANDed with the bits of dy it gives the ReLU6 gradient.
func bnMask(p float32) uint32 {
	var a, b uint32
	if p > 0 {
		a = 1
	}
	if p < 6 {
		b = 1
	}
	return -(a & b)
}

func bnBackReduceGeneric(dy, z []float32, c int, scale, shift []float32, relu bool, sg, sgz []float64) {
	scale, shift = scale[:c:c], shift[:c:c]
	sg, sgz = sg[:c:c], sgz[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		gr := dy[r : r+c : r+c]
		if !relu {
			for j := range zr {
				g := float64(gr[j])
				sg[j] += g
				sgz[j] += g * float64(zr[j])
			}
			continue
		}
		for j := range zr {
			v := zr[j]
			g := float64(math.Float32frombits(math.Float32bits(gr[j]) & bnMask(v*scale[j]+shift[j])))
			sg[j] += g
			sgz[j] += g * float64(v)
		}
	}
}

func bnBackApplyGeneric(dy, z, dz []float32, c int, scale, shift []float32, relu bool, a, b, cc []float32) {
	scale, shift = scale[:c:c], shift[:c:c]
	a, b, cc = a[:c:c], b[:c:c], cc[:c:c]
	for r := 0; r+c <= len(z); r += c {
		zr := z[r : r+c : r+c]
		gr := dy[r : r+c : r+c]
		or := dz[r : r+c : r+c]
		if !relu {
			for j := range zr {
				or[j] = a[j]*gr[j] + (b[j]*zr[j] + cc[j])
			}
			continue
		}
		for j := range zr {
			v := zr[j]
			g := math.Float32frombits(math.Float32bits(gr[j]) & bnMask(v*scale[j]+shift[j]))
			or[j] = a[j]*g + (b[j]*v + cc[j])
		}
	}
}
