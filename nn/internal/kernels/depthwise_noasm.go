//go:build !amd64 || purego

package kernels

// depthwiseAsm: there are no assembly kernels in this build; the caller runs
// the pure-Go one.
func depthwiseAsm(i ISA, in []float32, h, w, c, stride int, packed, bias []float32, act Activation, out []float32, oy0, oy1 int) bool {
	return false
}
