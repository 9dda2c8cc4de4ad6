//go:build !amd64 || purego

package kernels

// detectISA: only the pure-Go kernels exist off amd64 (or with -tags purego).
func detectISA() ISA { return isaGeneric }
