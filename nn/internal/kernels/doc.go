// Package kernels holds the numeric kernels of nn and nn/train: GEMM on a
// packed B (PackB, Gemm) and its transposed-A form for weight gradients
// (GemmATB), depthwise 3x3 convolution forward and backward, and the batch-norm
// training kernels. It imports nothing of the project.
//
// Each family of kernels has one file per role:
//
//	gemm.go           the API, argument checks and the dispatch on the ISA
//	gemm_generic.go   pure Go, every architecture (the reference for the fast paths)
//	gemm_amd64.go     Go declarations of the assembly and its blocking (amd64, !purego)
//	gemm_amd64.s      AVX-512 and AVX2 assembly
//	gemm_noasm.go     stubs where there is no assembly (other GOARCH, or purego)
//
// and likewise depthwise*, backward* (GemmATB, depthwise backward) and
// batchnorm*. An arm64 NEON port adds *_arm64.go and *_arm64.s beside them and
// narrows the noasm build tags. cpu*.go pick the ISA once at start-up: the
// CPU's best, or the one VARPAR_ISA names; the purego build tag forces pure
// Go. Every kernel is tested against a naive reference on random inputs,
// for every ISA the machine has (Available, Force).
//
// Kernels panic on shape mismatches: they are called only by nn and nn/train,
// with shapes a validated Spec produced.
package kernels
