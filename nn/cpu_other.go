//go:build !amd64 || purego

package nn

// detectISA: only the pure-Go kernels exist off amd64 (or with -tags purego).
func detectISA() isa { return isaGeneric }
