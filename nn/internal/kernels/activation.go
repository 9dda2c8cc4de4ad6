package kernels

// Activation is the function a kernel applies to its output before storing it.
type Activation uint8

const (
	ActNone  Activation = iota // identity
	ActReLU6                   // min(max(x, 0), 6)
)
