//go:build amd64 && !purego

#include "textflag.h"

// Backward-pass kernels; see backward_amd64.go for the contracts.
//
// ---------------------------------------------------------------- GemmATB
//
// func atbAVX512P1(args *atbArgs), atbAVX512P2, atbAVX512P3
// func atbAVX2P1(args *atbArgs), atbAVX2P2
//
// One call adds to one column tile of dw (1-3 panels of 16 columns for
// AVX-512, 1-2 ymm of 8 for AVX2) the products of g.m rows of a and d, for
// every row kk of dw: it walks down dw in tiles of R rows (the largest R of
// the kernel's list that is left), and for each tile holds the R×P
// accumulators in registers across all m rows: per row i of a and d it loads
// the tile's columns of d[i] (P vectors, the tail masked) and broadcasts
// a[i][kk0..kk0+R), one float at a time, against them. The accumulators
// start from dw and go back to it at the end of the tile, under the column
// masks, so every element of dw sums its terms in order of i. The caller
// (backward_amd64.go) blocks the rows so that a block's columns of d
// stay in L1 across the tiles of dw rows, and may swap the roles of a and d
// to compute dw transposed when n is narrow.
//
// Offsets in atbArgs.
#define ATB_A    0
#define ATB_LDA  8
#define ATB_D    16
#define ATB_LDD  24
#define ATB_DW   32
#define ATB_LDW  40
#define ATB_K    48
#define ATB_M    56
#define ATB_MASK 64

// Registers:
//	DI	*atbArgs
//	R12	a at (row 0, kk0 of the tile)
//	SI	a at (row i, kk0), walking down the rows
//	DX	lda in bytes
//	BX	d at (row i, first column of the tile)
//	R8	ldd in bytes
//	R10	dw at (kk0, first column of the tile)
//	R9	bytes between rows of dw
//	R14	dw at the row being loaded or stored; in the row loop, the row of
//		a ATB_PFROWS rows ahead of SI (prefetched)
//	AX	in the row loop, the row of d ATB_PFROWS rows ahead of BX
//	R11	rows of dw left
//	R13	m
//	CX	rows of a and d left
//	AVX-512: Z0-Z23 accumulators (row r, panel p is Z(P*r+p)), Z28-Z30 d,
//	Z31 the broadcast a, K1-K3 the column masks of the panels
//	AVX2: Y0-Y11 accumulators (row r, ymm p is Y(P*r+p)), Y12-Y13 d, Y14 the
//	broadcast a, Y15 the lane mask of the last ymm

#define ATB_SETUP \
	MOVQ args+0(FP), DI; \
	MOVQ ATB_A(DI), R12; \
	MOVQ ATB_LDA(DI), DX; \
	MOVQ ATB_LDD(DI), R8; \
	MOVQ ATB_DW(DI), R10; \
	MOVQ ATB_LDW(DI), R9; \
	MOVQ ATB_K(DI), R11; \
	MOVQ ATB_M(DI), R13

#define ATB512_SETUP \
	ATB_SETUP; \
	MOVQ ATB_MASK(DI), AX; \
	KMOVW AX, K1; \
	SHRQ $16, AX; \
	KMOVW AX, K2; \
	SHRQ $16, AX; \
	KMOVW AX, K3

// args.mask is the number of valid lanes (1-8) of the last ymm.
#define ATB2_SETUP \
	ATB_SETUP; \
	MOVQ $8, AX; \
	SUBQ ATB_MASK(DI), AX; \
	LEAQ atbMask8<>(SB), BX; \
	VMOVUPS (BX)(AX*4), Y15

// atbMask8<>: 8 lanes of -1, then 8 of 0; the 8 lanes from lane 8-v are the
// mask of the first v lanes.
DATA atbMask8<>+0(SB)/8, $-1
DATA atbMask8<>+8(SB)/8, $-1
DATA atbMask8<>+16(SB)/8, $-1
DATA atbMask8<>+24(SB)/8, $-1
DATA atbMask8<>+32(SB)/8, $0
DATA atbMask8<>+40(SB)/8, $0
DATA atbMask8<>+48(SB)/8, $0
DATA atbMask8<>+56(SB)/8, $0
GLOBL atbMask8<>(SB), RODATA|NOPTR, $64

// PFSETUP points R14 and AX ATB_PFROWS rows ahead of SI and BX: the
// inner loops prefetch the rows of a and d that far ahead (PF), so that the
// first tile of rows of dw to reach them, which reads them from memory, does
// not wait for each. Prefetches past the ends are harmless.
#define ATB_PFROWS $64
#define PFSETUP \
	MOVQ DX, R14; \
	IMULQ ATB_PFROWS, R14; \
	ADDQ SI, R14; \
	MOVQ R8, AX; \
	IMULQ ATB_PFROWS, AX; \
	ADDQ BX, AX

// 3 panels (48 columns), tiles of 8, 4, 2, 1 rows of dw.
#define LDACC(z0, z1, z2) VMOVUPS.Z (R14), K1, z0; VMOVUPS.Z 64(R14), K2, z1; VMOVUPS.Z 128(R14), K3, z2; ADDQ R9, R14
#define STACC(z0, z1, z2) VMOVUPS z0, K1, (R14); VMOVUPS z1, K2, 64(R14); VMOVUPS z2, K3, 128(R14); ADDQ R9, R14
#define LDD VMOVUPS.Z (BX), K1, Z28; VMOVUPS.Z 64(BX), K2, Z29; VMOVUPS.Z 128(BX), K3, Z30
#define FMA(off, z0, z1, z2) VBROADCASTSS off(SI), Z31; VFMADD231PS Z28, Z31, z0; VFMADD231PS Z29, Z31, z1; VFMADD231PS Z30, Z31, z2
#define PF PREFETCHT0 (R14); PREFETCHT0 (AX); PREFETCHT0 64(AX); PREFETCHT0 128(AX); ADDQ DX, R14; ADDQ R8, AX

// func atbAVX512P3(args *atbArgs)
TEXT ·atbAVX512P3(SB), NOSPLIT, $0-8
	ATB512_SETUP

tile:
	CMPQ R11, $8
	JGE  r8
	CMPQ R11, $4
	JGE  r4
	CMPQ R11, $2
	JGE  r2
	CMPQ R11, $1
	JGE  r1
	VZEROUPPER
	RET

r8:
	MOVQ R10, R14
	LDACC(Z0, Z1, Z2)
	LDACC(Z3, Z4, Z5)
	LDACC(Z6, Z7, Z8)
	LDACC(Z9, Z10, Z11)
	LDACC(Z12, Z13, Z14)
	LDACC(Z15, Z16, Z17)
	LDACC(Z18, Z19, Z20)
	LDACC(Z21, Z22, Z23)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop8:
	PF
	LDD
	FMA(0, Z0, Z1, Z2)
	FMA(4, Z3, Z4, Z5)
	FMA(8, Z6, Z7, Z8)
	FMA(12, Z9, Z10, Z11)
	FMA(16, Z12, Z13, Z14)
	FMA(20, Z15, Z16, Z17)
	FMA(24, Z18, Z19, Z20)
	FMA(28, Z21, Z22, Z23)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop8
	MOVQ R10, R14
	STACC(Z0, Z1, Z2)
	STACC(Z3, Z4, Z5)
	STACC(Z6, Z7, Z8)
	STACC(Z9, Z10, Z11)
	STACC(Z12, Z13, Z14)
	STACC(Z15, Z16, Z17)
	STACC(Z18, Z19, Z20)
	STACC(Z21, Z22, Z23)
	MOVQ R14, R10
	ADDQ $32, R12
	SUBQ $8, R11
	JMP  tile

r4:
	MOVQ R10, R14
	LDACC(Z0, Z1, Z2)
	LDACC(Z3, Z4, Z5)
	LDACC(Z6, Z7, Z8)
	LDACC(Z9, Z10, Z11)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop4:
	PF
	LDD
	FMA(0, Z0, Z1, Z2)
	FMA(4, Z3, Z4, Z5)
	FMA(8, Z6, Z7, Z8)
	FMA(12, Z9, Z10, Z11)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop4
	MOVQ R10, R14
	STACC(Z0, Z1, Z2)
	STACC(Z3, Z4, Z5)
	STACC(Z6, Z7, Z8)
	STACC(Z9, Z10, Z11)
	MOVQ R14, R10
	ADDQ $16, R12
	SUBQ $4, R11
	JMP  tile

r2:
	MOVQ R10, R14
	LDACC(Z0, Z1, Z2)
	LDACC(Z3, Z4, Z5)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop2:
	PF
	LDD
	FMA(0, Z0, Z1, Z2)
	FMA(4, Z3, Z4, Z5)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop2
	MOVQ R10, R14
	STACC(Z0, Z1, Z2)
	STACC(Z3, Z4, Z5)
	MOVQ R14, R10
	ADDQ $8, R12
	SUBQ $2, R11
	JMP  tile

r1:
	MOVQ R10, R14
	LDACC(Z0, Z1, Z2)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop1:
	PF
	LDD
	FMA(0, Z0, Z1, Z2)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop1
	MOVQ R10, R14
	STACC(Z0, Z1, Z2)
	MOVQ R14, R10
	ADDQ $4, R12
	SUBQ $1, R11
	JMP  tile

#undef LDACC
#undef STACC
#undef LDD
#undef FMA
#undef PF

// 2 panels (32 columns), tiles of 12, 8, 4, 2, 1 rows of dw.
#define LDACC(z0, z1) VMOVUPS.Z (R14), K1, z0; VMOVUPS.Z 64(R14), K2, z1; ADDQ R9, R14
#define STACC(z0, z1) VMOVUPS z0, K1, (R14); VMOVUPS z1, K2, 64(R14); ADDQ R9, R14
#define LDD VMOVUPS.Z (BX), K1, Z28; VMOVUPS.Z 64(BX), K2, Z29
#define FMA(off, z0, z1) VBROADCASTSS off(SI), Z31; VFMADD231PS Z28, Z31, z0; VFMADD231PS Z29, Z31, z1
#define PF PREFETCHT0 (R14); PREFETCHT0 (AX); PREFETCHT0 64(AX); ADDQ DX, R14; ADDQ R8, AX

// func atbAVX512P2(args *atbArgs)
TEXT ·atbAVX512P2(SB), NOSPLIT, $0-8
	ATB512_SETUP

tile:
	CMPQ R11, $12
	JGE  r12
	CMPQ R11, $8
	JGE  r8
	CMPQ R11, $4
	JGE  r4
	CMPQ R11, $2
	JGE  r2
	CMPQ R11, $1
	JGE  r1
	VZEROUPPER
	RET

r12:
	MOVQ R10, R14
	LDACC(Z0, Z1)
	LDACC(Z2, Z3)
	LDACC(Z4, Z5)
	LDACC(Z6, Z7)
	LDACC(Z8, Z9)
	LDACC(Z10, Z11)
	LDACC(Z12, Z13)
	LDACC(Z14, Z15)
	LDACC(Z16, Z17)
	LDACC(Z18, Z19)
	LDACC(Z20, Z21)
	LDACC(Z22, Z23)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop12:
	PF
	LDD
	FMA(0, Z0, Z1)
	FMA(4, Z2, Z3)
	FMA(8, Z4, Z5)
	FMA(12, Z6, Z7)
	FMA(16, Z8, Z9)
	FMA(20, Z10, Z11)
	FMA(24, Z12, Z13)
	FMA(28, Z14, Z15)
	FMA(32, Z16, Z17)
	FMA(36, Z18, Z19)
	FMA(40, Z20, Z21)
	FMA(44, Z22, Z23)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop12
	MOVQ R10, R14
	STACC(Z0, Z1)
	STACC(Z2, Z3)
	STACC(Z4, Z5)
	STACC(Z6, Z7)
	STACC(Z8, Z9)
	STACC(Z10, Z11)
	STACC(Z12, Z13)
	STACC(Z14, Z15)
	STACC(Z16, Z17)
	STACC(Z18, Z19)
	STACC(Z20, Z21)
	STACC(Z22, Z23)
	MOVQ R14, R10
	ADDQ $48, R12
	SUBQ $12, R11
	JMP  tile

r8:
	MOVQ R10, R14
	LDACC(Z0, Z1)
	LDACC(Z2, Z3)
	LDACC(Z4, Z5)
	LDACC(Z6, Z7)
	LDACC(Z8, Z9)
	LDACC(Z10, Z11)
	LDACC(Z12, Z13)
	LDACC(Z14, Z15)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop8:
	PF
	LDD
	FMA(0, Z0, Z1)
	FMA(4, Z2, Z3)
	FMA(8, Z4, Z5)
	FMA(12, Z6, Z7)
	FMA(16, Z8, Z9)
	FMA(20, Z10, Z11)
	FMA(24, Z12, Z13)
	FMA(28, Z14, Z15)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop8
	MOVQ R10, R14
	STACC(Z0, Z1)
	STACC(Z2, Z3)
	STACC(Z4, Z5)
	STACC(Z6, Z7)
	STACC(Z8, Z9)
	STACC(Z10, Z11)
	STACC(Z12, Z13)
	STACC(Z14, Z15)
	MOVQ R14, R10
	ADDQ $32, R12
	SUBQ $8, R11
	JMP  tile

r4:
	MOVQ R10, R14
	LDACC(Z0, Z1)
	LDACC(Z2, Z3)
	LDACC(Z4, Z5)
	LDACC(Z6, Z7)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop4:
	PF
	LDD
	FMA(0, Z0, Z1)
	FMA(4, Z2, Z3)
	FMA(8, Z4, Z5)
	FMA(12, Z6, Z7)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop4
	MOVQ R10, R14
	STACC(Z0, Z1)
	STACC(Z2, Z3)
	STACC(Z4, Z5)
	STACC(Z6, Z7)
	MOVQ R14, R10
	ADDQ $16, R12
	SUBQ $4, R11
	JMP  tile

r2:
	MOVQ R10, R14
	LDACC(Z0, Z1)
	LDACC(Z2, Z3)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop2:
	PF
	LDD
	FMA(0, Z0, Z1)
	FMA(4, Z2, Z3)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop2
	MOVQ R10, R14
	STACC(Z0, Z1)
	STACC(Z2, Z3)
	MOVQ R14, R10
	ADDQ $8, R12
	SUBQ $2, R11
	JMP  tile

r1:
	MOVQ R10, R14
	LDACC(Z0, Z1)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop1:
	PF
	LDD
	FMA(0, Z0, Z1)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop1
	MOVQ R10, R14
	STACC(Z0, Z1)
	MOVQ R14, R10
	ADDQ $4, R12
	SUBQ $1, R11
	JMP  tile

#undef LDACC
#undef STACC
#undef LDD
#undef FMA
#undef PF

// 1 panel (16 columns), tiles of 24, 16, 8, 4, 2, 1 rows of dw.
#define LDACC(z0) VMOVUPS.Z (R14), K1, z0; ADDQ R9, R14
#define STACC(z0) VMOVUPS z0, K1, (R14); ADDQ R9, R14
#define LDD VMOVUPS.Z (BX), K1, Z28
#define FMA(off, z0) VBROADCASTSS off(SI), Z31; VFMADD231PS Z28, Z31, z0
#define PF PREFETCHT0 (R14); PREFETCHT0 (AX); ADDQ DX, R14; ADDQ R8, AX

// func atbAVX512P1(args *atbArgs)
TEXT ·atbAVX512P1(SB), NOSPLIT, $0-8
	ATB512_SETUP

tile:
	CMPQ R11, $24
	JGE  r24
	CMPQ R11, $16
	JGE  r16
	CMPQ R11, $8
	JGE  r8
	CMPQ R11, $4
	JGE  r4
	CMPQ R11, $2
	JGE  r2
	CMPQ R11, $1
	JGE  r1
	VZEROUPPER
	RET

r24:
	MOVQ R10, R14
	LDACC(Z0)
	LDACC(Z1)
	LDACC(Z2)
	LDACC(Z3)
	LDACC(Z4)
	LDACC(Z5)
	LDACC(Z6)
	LDACC(Z7)
	LDACC(Z8)
	LDACC(Z9)
	LDACC(Z10)
	LDACC(Z11)
	LDACC(Z12)
	LDACC(Z13)
	LDACC(Z14)
	LDACC(Z15)
	LDACC(Z16)
	LDACC(Z17)
	LDACC(Z18)
	LDACC(Z19)
	LDACC(Z20)
	LDACC(Z21)
	LDACC(Z22)
	LDACC(Z23)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop24:
	PF
	LDD
	FMA(0, Z0)
	FMA(4, Z1)
	FMA(8, Z2)
	FMA(12, Z3)
	FMA(16, Z4)
	FMA(20, Z5)
	FMA(24, Z6)
	FMA(28, Z7)
	FMA(32, Z8)
	FMA(36, Z9)
	FMA(40, Z10)
	FMA(44, Z11)
	FMA(48, Z12)
	FMA(52, Z13)
	FMA(56, Z14)
	FMA(60, Z15)
	FMA(64, Z16)
	FMA(68, Z17)
	FMA(72, Z18)
	FMA(76, Z19)
	FMA(80, Z20)
	FMA(84, Z21)
	FMA(88, Z22)
	FMA(92, Z23)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop24
	MOVQ R10, R14
	STACC(Z0)
	STACC(Z1)
	STACC(Z2)
	STACC(Z3)
	STACC(Z4)
	STACC(Z5)
	STACC(Z6)
	STACC(Z7)
	STACC(Z8)
	STACC(Z9)
	STACC(Z10)
	STACC(Z11)
	STACC(Z12)
	STACC(Z13)
	STACC(Z14)
	STACC(Z15)
	STACC(Z16)
	STACC(Z17)
	STACC(Z18)
	STACC(Z19)
	STACC(Z20)
	STACC(Z21)
	STACC(Z22)
	STACC(Z23)
	MOVQ R14, R10
	ADDQ $96, R12
	SUBQ $24, R11
	JMP  tile

r16:
	MOVQ R10, R14
	LDACC(Z0)
	LDACC(Z1)
	LDACC(Z2)
	LDACC(Z3)
	LDACC(Z4)
	LDACC(Z5)
	LDACC(Z6)
	LDACC(Z7)
	LDACC(Z8)
	LDACC(Z9)
	LDACC(Z10)
	LDACC(Z11)
	LDACC(Z12)
	LDACC(Z13)
	LDACC(Z14)
	LDACC(Z15)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop16:
	PF
	LDD
	FMA(0, Z0)
	FMA(4, Z1)
	FMA(8, Z2)
	FMA(12, Z3)
	FMA(16, Z4)
	FMA(20, Z5)
	FMA(24, Z6)
	FMA(28, Z7)
	FMA(32, Z8)
	FMA(36, Z9)
	FMA(40, Z10)
	FMA(44, Z11)
	FMA(48, Z12)
	FMA(52, Z13)
	FMA(56, Z14)
	FMA(60, Z15)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop16
	MOVQ R10, R14
	STACC(Z0)
	STACC(Z1)
	STACC(Z2)
	STACC(Z3)
	STACC(Z4)
	STACC(Z5)
	STACC(Z6)
	STACC(Z7)
	STACC(Z8)
	STACC(Z9)
	STACC(Z10)
	STACC(Z11)
	STACC(Z12)
	STACC(Z13)
	STACC(Z14)
	STACC(Z15)
	MOVQ R14, R10
	ADDQ $64, R12
	SUBQ $16, R11
	JMP  tile

r8:
	MOVQ R10, R14
	LDACC(Z0)
	LDACC(Z1)
	LDACC(Z2)
	LDACC(Z3)
	LDACC(Z4)
	LDACC(Z5)
	LDACC(Z6)
	LDACC(Z7)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop8:
	PF
	LDD
	FMA(0, Z0)
	FMA(4, Z1)
	FMA(8, Z2)
	FMA(12, Z3)
	FMA(16, Z4)
	FMA(20, Z5)
	FMA(24, Z6)
	FMA(28, Z7)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop8
	MOVQ R10, R14
	STACC(Z0)
	STACC(Z1)
	STACC(Z2)
	STACC(Z3)
	STACC(Z4)
	STACC(Z5)
	STACC(Z6)
	STACC(Z7)
	MOVQ R14, R10
	ADDQ $32, R12
	SUBQ $8, R11
	JMP  tile

r4:
	MOVQ R10, R14
	LDACC(Z0)
	LDACC(Z1)
	LDACC(Z2)
	LDACC(Z3)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop4:
	PF
	LDD
	FMA(0, Z0)
	FMA(4, Z1)
	FMA(8, Z2)
	FMA(12, Z3)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop4
	MOVQ R10, R14
	STACC(Z0)
	STACC(Z1)
	STACC(Z2)
	STACC(Z3)
	MOVQ R14, R10
	ADDQ $16, R12
	SUBQ $4, R11
	JMP  tile

r2:
	MOVQ R10, R14
	LDACC(Z0)
	LDACC(Z1)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop2:
	PF
	LDD
	FMA(0, Z0)
	FMA(4, Z1)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop2
	MOVQ R10, R14
	STACC(Z0)
	STACC(Z1)
	MOVQ R14, R10
	ADDQ $8, R12
	SUBQ $2, R11
	JMP  tile

r1:
	MOVQ R10, R14
	LDACC(Z0)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop1:
	PF
	LDD
	FMA(0, Z0)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop1
	MOVQ R10, R14
	STACC(Z0)
	MOVQ R14, R10
	ADDQ $4, R12
	SUBQ $1, R11
	JMP  tile

#undef LDACC
#undef STACC
#undef LDD
#undef FMA
#undef PF

// 2 ymm (16 columns, the last masked by Y15), tiles of 6, 4, 2, 1 rows of dw.
#define LDACC(y0, y1) VMOVUPS (R14), y0; VMASKMOVPS 32(R14), Y15, y1; ADDQ R9, R14
#define STACC(y0, y1) VMOVUPS y0, (R14); VMASKMOVPS y1, Y15, 32(R14); ADDQ R9, R14
#define LDD VMOVUPS (BX), Y12; VMASKMOVPS 32(BX), Y15, Y13
#define FMA(off, y0, y1) VBROADCASTSS off(SI), Y14; VFMADD231PS Y12, Y14, y0; VFMADD231PS Y13, Y14, y1
#define PF PREFETCHT0 (R14); PREFETCHT0 (AX); ADDQ DX, R14; ADDQ R8, AX

// func atbAVX2P2(args *atbArgs)
TEXT ·atbAVX2P2(SB), NOSPLIT, $0-8
	ATB2_SETUP

tile:
	CMPQ R11, $6
	JGE  r6
	CMPQ R11, $4
	JGE  r4
	CMPQ R11, $2
	JGE  r2
	CMPQ R11, $1
	JGE  r1
	VZEROUPPER
	RET

r6:
	MOVQ R10, R14
	LDACC(Y0, Y1)
	LDACC(Y2, Y3)
	LDACC(Y4, Y5)
	LDACC(Y6, Y7)
	LDACC(Y8, Y9)
	LDACC(Y10, Y11)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop6:
	PF
	LDD
	FMA(0, Y0, Y1)
	FMA(4, Y2, Y3)
	FMA(8, Y4, Y5)
	FMA(12, Y6, Y7)
	FMA(16, Y8, Y9)
	FMA(20, Y10, Y11)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop6
	MOVQ R10, R14
	STACC(Y0, Y1)
	STACC(Y2, Y3)
	STACC(Y4, Y5)
	STACC(Y6, Y7)
	STACC(Y8, Y9)
	STACC(Y10, Y11)
	MOVQ R14, R10
	ADDQ $24, R12
	SUBQ $6, R11
	JMP  tile

r4:
	MOVQ R10, R14
	LDACC(Y0, Y1)
	LDACC(Y2, Y3)
	LDACC(Y4, Y5)
	LDACC(Y6, Y7)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop4:
	PF
	LDD
	FMA(0, Y0, Y1)
	FMA(4, Y2, Y3)
	FMA(8, Y4, Y5)
	FMA(12, Y6, Y7)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop4
	MOVQ R10, R14
	STACC(Y0, Y1)
	STACC(Y2, Y3)
	STACC(Y4, Y5)
	STACC(Y6, Y7)
	MOVQ R14, R10
	ADDQ $16, R12
	SUBQ $4, R11
	JMP  tile

r2:
	MOVQ R10, R14
	LDACC(Y0, Y1)
	LDACC(Y2, Y3)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop2:
	PF
	LDD
	FMA(0, Y0, Y1)
	FMA(4, Y2, Y3)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop2
	MOVQ R10, R14
	STACC(Y0, Y1)
	STACC(Y2, Y3)
	MOVQ R14, R10
	ADDQ $8, R12
	SUBQ $2, R11
	JMP  tile

r1:
	MOVQ R10, R14
	LDACC(Y0, Y1)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop1:
	PF
	LDD
	FMA(0, Y0, Y1)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop1
	MOVQ R10, R14
	STACC(Y0, Y1)
	MOVQ R14, R10
	ADDQ $4, R12
	SUBQ $1, R11
	JMP  tile

#undef LDACC
#undef STACC
#undef LDD
#undef FMA
#undef PF

// 1 ymm (8 columns, the last masked by Y15), tiles of 12, 8, 4, 2, 1 rows of dw.
#define LDACC(y0) VMASKMOVPS (R14), Y15, y0; ADDQ R9, R14
#define STACC(y0) VMASKMOVPS y0, Y15, (R14); ADDQ R9, R14
#define LDD VMASKMOVPS (BX), Y15, Y12
#define FMA(off, y0) VBROADCASTSS off(SI), Y14; VFMADD231PS Y12, Y14, y0
#define PF PREFETCHT0 (R14); PREFETCHT0 (AX); ADDQ DX, R14; ADDQ R8, AX

// func atbAVX2P1(args *atbArgs)
TEXT ·atbAVX2P1(SB), NOSPLIT, $0-8
	ATB2_SETUP

tile:
	CMPQ R11, $12
	JGE  r12
	CMPQ R11, $8
	JGE  r8
	CMPQ R11, $4
	JGE  r4
	CMPQ R11, $2
	JGE  r2
	CMPQ R11, $1
	JGE  r1
	VZEROUPPER
	RET

r12:
	MOVQ R10, R14
	LDACC(Y0)
	LDACC(Y1)
	LDACC(Y2)
	LDACC(Y3)
	LDACC(Y4)
	LDACC(Y5)
	LDACC(Y6)
	LDACC(Y7)
	LDACC(Y8)
	LDACC(Y9)
	LDACC(Y10)
	LDACC(Y11)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop12:
	PF
	LDD
	FMA(0, Y0)
	FMA(4, Y1)
	FMA(8, Y2)
	FMA(12, Y3)
	FMA(16, Y4)
	FMA(20, Y5)
	FMA(24, Y6)
	FMA(28, Y7)
	FMA(32, Y8)
	FMA(36, Y9)
	FMA(40, Y10)
	FMA(44, Y11)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop12
	MOVQ R10, R14
	STACC(Y0)
	STACC(Y1)
	STACC(Y2)
	STACC(Y3)
	STACC(Y4)
	STACC(Y5)
	STACC(Y6)
	STACC(Y7)
	STACC(Y8)
	STACC(Y9)
	STACC(Y10)
	STACC(Y11)
	MOVQ R14, R10
	ADDQ $48, R12
	SUBQ $12, R11
	JMP  tile

r8:
	MOVQ R10, R14
	LDACC(Y0)
	LDACC(Y1)
	LDACC(Y2)
	LDACC(Y3)
	LDACC(Y4)
	LDACC(Y5)
	LDACC(Y6)
	LDACC(Y7)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop8:
	PF
	LDD
	FMA(0, Y0)
	FMA(4, Y1)
	FMA(8, Y2)
	FMA(12, Y3)
	FMA(16, Y4)
	FMA(20, Y5)
	FMA(24, Y6)
	FMA(28, Y7)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop8
	MOVQ R10, R14
	STACC(Y0)
	STACC(Y1)
	STACC(Y2)
	STACC(Y3)
	STACC(Y4)
	STACC(Y5)
	STACC(Y6)
	STACC(Y7)
	MOVQ R14, R10
	ADDQ $32, R12
	SUBQ $8, R11
	JMP  tile

r4:
	MOVQ R10, R14
	LDACC(Y0)
	LDACC(Y1)
	LDACC(Y2)
	LDACC(Y3)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop4:
	PF
	LDD
	FMA(0, Y0)
	FMA(4, Y1)
	FMA(8, Y2)
	FMA(12, Y3)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop4
	MOVQ R10, R14
	STACC(Y0)
	STACC(Y1)
	STACC(Y2)
	STACC(Y3)
	MOVQ R14, R10
	ADDQ $16, R12
	SUBQ $4, R11
	JMP  tile

r2:
	MOVQ R10, R14
	LDACC(Y0)
	LDACC(Y1)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop2:
	PF
	LDD
	FMA(0, Y0)
	FMA(4, Y1)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop2
	MOVQ R10, R14
	STACC(Y0)
	STACC(Y1)
	MOVQ R14, R10
	ADDQ $8, R12
	SUBQ $2, R11
	JMP  tile

r1:
	MOVQ R10, R14
	LDACC(Y0)
	MOVQ R12, SI
	MOVQ ATB_D(DI), BX
	MOVQ R13, CX
	PFSETUP
loop1:
	PF
	LDD
	FMA(0, Y0)
	ADDQ DX, SI
	ADDQ R8, BX
	DECQ CX
	JNZ  loop1
	MOVQ R10, R14
	STACC(Y0)
	MOVQ R14, R10
	ADDQ $4, R12
	SUBQ $1, R11
	JMP  tile

#undef LDACC
#undef STACC
#undef LDD
#undef FMA
#undef PF

// ---------------------------------------------------------------- depthwise
//
// func dwbi1AVX512N1(args *dwbiArgs), dwbi1AVX512N2, dwbi1AVX512N3 (stride 1)
// func dwbi2AVX512N1(args *dwbiArgs), dwbi2AVX512N2 (stride 2)
// func dwbi2PairsAVX512(args *dwbiArgs) (stride 2, pairs of rows)
// func dwbi1AVX2N1 ... dwbi2AVX2N2: the same with 8-lane groups
// func dwbwAVX512(args *dwbwArgs), dwbwAVX2(args *dwbwArgs)
// func dwbw3AVX512(args *dwbwArgs), dwbw3AVX2(args *dwbwArgs)
//
// Row kernels of Depthwise3x3BackInput (dwbi: one input row fed by N rows
// of dout, or with stride 1 and N = 3 a run of such rows; dwbi2Pairs: a run
// of pairs of rows) and Depthwise3x3BackWeight (dwbw: one input row against
// one row of dout, three taps; dwbw3: a run of output rows against their
// three input rows, nine taps), for one channel chunk; see backward.go
// for the chunk's tap-major weight and accumulator layout, whose rows are
// padded to 16 channels so that their loads need no mask. Like the forward
// kernels they loop over channel groups (16 channels for AVX-512, the last
// masked by K1; 8 for AVX2, which the caller gives only whole groups)
// outermost, keep the group's taps (or sums) in registers for all the rows
// of the call and sweep the pixels of each row.
// Pixels at the edges leave out the taps that would reach past the row, so
// nothing outside the image is read and padding contributes exactly nothing.
//
// Offsets in dwbiArgs and dwbwArgs.
#define DWBI_DIN   0
#define DWBI_D0    8
#define DWBI_D1    16
#define DWBI_D2    24
#define DWBI_T0    32
#define DWBI_T1    40
#define DWBI_T2    48
#define DWBI_CS    56
#define DWBI_TS    64
#define DWBI_CC    72
#define DWBI_W     80
#define DWBI_OW    88
#define DWBI_WEVEN 96
#define DWBI_RSTEP 104
#define DWBI_REND  112
#define DWBI_DSTEP 120
#define DWBI_DINROW 128

#define DWBW_IN    0
#define DWBW_G     8
#define DWBW_ACC   16
#define DWBW_CS    24
#define DWBW_STEP  32
#define DWBW_TS    40
#define DWBW_CC    48
#define DWBW_MID   56
#define DWBW_FLAGS 64
#define DWBW_RS     72
#define DWBW_INSTEP 80
#define DWBW_GSTEP  88
#define DWBW_GEND   96

// dwbMask16<>[n]: the opmask of the first n lanes, n = 0..16.
DATA dwbMask16<>+0(SB)/2, $0x0000
DATA dwbMask16<>+2(SB)/2, $0x0001
DATA dwbMask16<>+4(SB)/2, $0x0003
DATA dwbMask16<>+6(SB)/2, $0x0007
DATA dwbMask16<>+8(SB)/2, $0x000f
DATA dwbMask16<>+10(SB)/2, $0x001f
DATA dwbMask16<>+12(SB)/2, $0x003f
DATA dwbMask16<>+14(SB)/2, $0x007f
DATA dwbMask16<>+16(SB)/2, $0x00ff
DATA dwbMask16<>+18(SB)/2, $0x01ff
DATA dwbMask16<>+20(SB)/2, $0x03ff
DATA dwbMask16<>+22(SB)/2, $0x07ff
DATA dwbMask16<>+24(SB)/2, $0x0fff
DATA dwbMask16<>+26(SB)/2, $0x1fff
DATA dwbMask16<>+28(SB)/2, $0x3fff
DATA dwbMask16<>+30(SB)/2, $0x7fff
DATA dwbMask16<>+32(SB)/2, $0xffff
GLOBL dwbMask16<>(SB), RODATA|NOPTR, $34

// Registers, input gradient:
//	DI	*dwbiArgs
//	CX	bytes between pixels
//	R12	bytes between taps
//	R13	channels left (current group included)
//	R14	byte offset of the current group
//	R8, R9, R10	rows 0-2 of dout feeding this row, at the current pixel
//	R11	din at the current pixel
//	BX	pixel counter
//	row q: taps W0, W1, W2 (kx = 0, 1, 2), sum E (stride 1: of the
//	pixel; stride 2: of the even pixel), O the sum of the odd pixel, X the
//	dout vector both read (stride 2)
//
// ROWS(op) applies op to each row feeding the input row:
//	op(R, doff, toff, W0, W1, W2, E, O, X)
// with R the row's pointer and doff, toff the offsets in dwbiArgs of its
// dout row and its first tap. SUMS adds the rows' sums E (and O) into those
// of row 0.

// BI_TAPS loads the row's taps of the group; BI_PTR points R at its row of
// dout, AX bytes down (stride 1: the current row of a run; else 0).
#define BI_TAPS(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MOVQ toff(DI), SI; \
	ADDQ R14, SI; \
	VMOVUPS (SI), W0; \
	VMOVUPS (SI)(R12*1), W1; \
	VMOVUPS (SI)(R12*2), W2
#define BI_PTR(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MOVQ doff(DI), R; \
	ADDQ R14, R; \
	ADDQ AX, R

// Stride 1: input pixel ix receives dout pixels ix+1, ix, ix-1 through
// taps kx = 0, 1, 2. R points at dout pixel ix-1 (at 0 for ix = 0).
#define BI_FIRST(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MUL(E, (R), W1); \
	FMA(E, (R)(CX*1), W0)
#define BI_MID(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MUL(E, (R), W2); \
	FMA(E, (R)(CX*1), W1); \
	FMA(E, (R)(CX*2), W0); \
	ADDQ CX, R
#define BI_LAST(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MUL(E, (R), W2); \
	FMA(E, (R)(CX*1), W1)
#define BI_CENTRE(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	MUL(E, (R), W1)

// The AVX-512 sweep of the interior pixels keeps, per row, the dout
// vectors of pixels ix-1, ix, ix+1 in C0-C2 (in rotating roles, three
// pixels per iteration), so that each is loaded once instead of three times.
#define BI_ROTLOAD(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	LDV(C0, (R)); \
	LDV(C1, (R)(CX*1))
#define BI_ROTSTEP(R, W0, W1, W2, E, P, C, N) \
	LDV(N, (R)(CX*2)); \
	VMULPS P, W2, E; \
	VFMADD231PS C, W1, E; \
	VFMADD231PS N, W0, E; \
	ADDQ CX, R
#define BI_ROT0(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) BI_ROTSTEP(R, W0, W1, W2, E, C0, C1, C2)
#define BI_ROT1(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) BI_ROTSTEP(R, W0, W1, W2, E, C1, C2, C0)
#define BI_ROT2(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) BI_ROTSTEP(R, W0, W1, W2, E, C2, C0, C1)

#define BI_STORE \
	SUMS; \
	STV(E0, (R11)); \
	ADDQ CX, R11

#define BI1_BODY \
	MOVQ args+0(FP), DI; \
	MOVQ DWBI_CS(DI), CX; \
	MOVQ DWBI_TS(DI), R12; \
	MOVQ DWBI_CC(DI), R13; \
	XORQ R14, R14; \
group: \
	GMASK; \
	ROWS(BI_TAPS); \
	XORQ AX, AX; \
row: \
	ROWS(BI_PTR); \
	MOVQ DWBI_DIN(DI), R11; \
	ADDQ R14, R11; \
	ADDQ AX, R11; \
	MOVQ DWBI_W(DI), BX; \
	CMPQ BX, $1; \
	JEQ  single; \
	ROWS(BI_FIRST); \
	BI_STORE; \
	SUBQ $2, BX; \
	JEQ  last; \
	BI_ROTLOOP; \
	TESTQ BX, BX; \
	JEQ  last; \
mid: \
	ROWS(BI_MID); \
	BI_STORE; \
	DECQ BX; \
	JNZ  mid; \
last: \
	ROWS(BI_LAST); \
	BI_STORE; \
	JMP  rowdone; \
single: \
	ROWS(BI_CENTRE); \
	BI_STORE; \
rowdone: \
	ADDQ DWBI_RSTEP(DI), AX; \
	CMPQ AX, DWBI_REND(DI); \
	JLT  row; \
	ADDQ $LANEB, R14; \
	SUBQ $LANES, R13; \
	JGT  group; \
	VZEROUPPER; \
	RET

// Stride 2: input pixel 2p receives dout pixel p through tap 1; pixel 2p+1
// receives p through tap 2 and p+1 through tap 0. R points at dout pixel p.
#define BI2_PAIR(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	LDV(X, (R)); \
	VMULPS X, W1, E; \
	VMULPS X, W2, O; \
	FMA(O, (R)(CX*1), W0); \
	ADDQ CX, R
// The last dout pixel p = ow-1: pixel 2p, and pixel 2p+1 if it exists
// (w even), which has no pixel p+1.
#define BI2_END(R, doff, toff, W0, W1, W2, E, O, X, C0, C1, C2) \
	LDV(X, (R)); \
	VMULPS X, W1, E; \
	VMULPS X, W2, O

#define BI2_BODY \
	MOVQ args+0(FP), DI; \
	MOVQ DWBI_CS(DI), CX; \
	MOVQ DWBI_TS(DI), R12; \
	MOVQ DWBI_CC(DI), R13; \
	XORQ R14, R14; \
group: \
	GMASK; \
	ROWS(BI_TAPS); \
	XORQ AX, AX; \
	ROWS(BI_PTR); \
	MOVQ DWBI_DIN(DI), R11; \
	ADDQ R14, R11; \
	MOVQ DWBI_OW(DI), BX; \
	DECQ BX; \
	JZ   end; \
pair: \
	ROWS(BI2_PAIR); \
	SUMS; \
	STV(E0, (R11)); \
	STV(O0, (R11)(CX*1)); \
	LEAQ (R11)(CX*2), R11; \
	DECQ BX; \
	JNZ  pair; \
end: \
	ROWS(BI2_END); \
	SUMS; \
	STV(E0, (R11)); \
	CMPQ DWBI_WEVEN(DI), $0; \
	JEQ  next; \
	STV(O0, (R11)(CX*1)); \
next: \
	ADDQ $LANEB, R14; \
	SUBQ $LANES, R13; \
	JGT  group; \
	VZEROUPPER; \
	RET

// Registers, weight gradient:
//	DI	*dwbwArgs
//	CX	bytes between pixels
//	DX	bytes between the windows of adjacent output pixels (stride × CX)
//	R12	bytes between the accumulators of the taps
//	R13	channels left (current group included)
//	R14	byte offset of the current group
//	SI	the group's accumulator of tap kx = 0
//	R8	input row at the window of the current output pixel (kx = 0)
//	R9	dout row at the current output pixel
//	BX	pixel counter
//	A0-A2, B0-B2	sums of taps kx = 0-2 over even and odd pixels of the sweep
//	G0, G1	dout of the two pixels of a pair
//
// The first pixel's window has its left column in the padding; the last
// pixel's (flags&2) may have its right column there; the mid pixels in
// between have all three columns. flags&1: the first pixel's right column is
// inside the row (w > 1).
#define BW_BODY \
	MOVQ args+0(FP), DI; \
	MOVQ DWBW_CS(DI), CX; \
	MOVQ DWBW_STEP(DI), DX; \
	MOVQ DWBW_TS(DI), R12; \
	MOVQ DWBW_CC(DI), R13; \
	XORQ R14, R14; \
group: \
	GMASK; \
	MOVQ DWBW_ACC(DI), SI; \
	ADDQ R14, SI; \
	VMOVUPS (SI), A0; \
	VMOVUPS (SI)(R12*1), A1; \
	VMOVUPS (SI)(R12*2), A2; \
	VXORPS B0, B0, B0; \
	VXORPS B1, B1, B1; \
	VXORPS B2, B2, B2; \
	MOVQ DWBW_IN(DI), R8; \
	ADDQ R14, R8; \
	MOVQ DWBW_G(DI), R9; \
	ADDQ R14, R9; \
	LDV(G0, (R9)); \
	FMA(A1, (R8), G0); \
	TESTQ $1, DWBW_FLAGS(DI); \
	JZ   firstdone; \
	FMA(A2, (R8)(CX*1), G0); \
firstdone: \
	ADDQ DX, R8; \
	SUBQ CX, R8; \
	ADDQ CX, R9; \
	MOVQ DWBW_MID(DI), BX; \
	CMPQ BX, $2; \
	JLT  odd; \
pairs: \
	LDV(G0, (R9)); \
	LDV(G1, (R9)(CX*1)); \
	FMA(A0, (R8), G0); \
	FMA(A1, (R8)(CX*1), G0); \
	FMA(A2, (R8)(CX*2), G0); \
	ADDQ DX, R8; \
	FMA(B0, (R8), G1); \
	FMA(B1, (R8)(CX*1), G1); \
	FMA(B2, (R8)(CX*2), G1); \
	ADDQ DX, R8; \
	LEAQ (R9)(CX*2), R9; \
	SUBQ $2, BX; \
	CMPQ BX, $2; \
	JGE  pairs; \
odd: \
	TESTQ BX, BX; \
	JZ   last; \
	LDV(G0, (R9)); \
	FMA(A0, (R8), G0); \
	FMA(A1, (R8)(CX*1), G0); \
	FMA(A2, (R8)(CX*2), G0); \
	ADDQ DX, R8; \
	ADDQ CX, R9; \
last: \
	TESTQ $2, DWBW_FLAGS(DI); \
	JZ   store; \
	LDV(G0, (R9)); \
	FMA(A0, (R8), G0); \
	FMA(A1, (R8)(CX*1), G0); \
store: \
	VADDPS B0, A0, A0; \
	VADDPS B1, A1, A1; \
	VADDPS B2, A2, A2; \
	VMOVUPS A0, (SI); \
	VMOVUPS A1, (SI)(R12*1); \
	VMOVUPS A2, (SI)(R12*2); \
	ADDQ $LANEB, R14; \
	SUBQ $LANES, R13; \
	JGT  group; \
	VZEROUPPER; \
	RET

// dwbw3: the interior output rows [ra, rb) of the weight gradient, whose
// three input rows are all inside the image, in one call: per channel group
// the nine sums stay in registers (Aq0-Aq2 for kernel row q) across all the
// rows, and each pixel of dout is loaded once for its nine taps.
// Registers as for dwbw, except: R8, R9, R10 the three input rows at the
// window of the current output pixel, R11 dout at it, AX the byte offset of
// the current input row (kernel row 0) and R12 that of the dout row.
#define BW3_FIRST(R, A0, A1, A2, C0, C1, C2) \
	FMA(A1, (R), G0)
#define BW3_FIRSTR(R, A0, A1, A2, C0, C1, C2) \
	FMA(A2, (R)(CX*1), G0)
#define BW3_NEXT(R, A0, A1, A2, C0, C1, C2) \
	ADDQ DX, R; \
	SUBQ CX, R
#define BW3_MID(R, A0, A1, A2, C0, C1, C2) \
	FMA(A0, (R), G0); \
	FMA(A1, (R)(CX*1), G0); \
	FMA(A2, (R)(CX*2), G0); \
	ADDQ DX, R
#define BW3_LAST(R, A0, A1, A2, C0, C1, C2) \
	FMA(A0, (R), G0); \
	FMA(A1, (R)(CX*1), G0)
#define BW3_ROWS(op) op(R8, A00, A01, A02, C00, C01, C02); op(R9, A10, A11, A12, C10, C11, C12); op(R10, A20, A21, A22, C20, C21, C22)

// The AVX-512 sweep of the interior pixels with stride 1 (flags&4) keeps,
// per input row, the vectors of the three columns of the window in C0-C2
// (rotating roles, three pixels per iteration), so that each is loaded once.
#define BW3_ROTLOAD(R, A0, A1, A2, C0, C1, C2) \
	LDV(C0, (R)); \
	LDV(C1, (R)(CX*1))
#define BW3_ROTSTEP(R, A0, A1, A2, P, C, N) \
	LDV(N, (R)(CX*2)); \
	VFMADD231PS P, G0, A0; \
	VFMADD231PS C, G0, A1; \
	VFMADD231PS N, G0, A2; \
	ADDQ CX, R
#define BW3_ROT0(R, A0, A1, A2, C0, C1, C2) BW3_ROTSTEP(R, A0, A1, A2, C0, C1, C2)
#define BW3_ROT1(R, A0, A1, A2, C0, C1, C2) BW3_ROTSTEP(R, A0, A1, A2, C1, C2, C0)
#define BW3_ROT2(R, A0, A1, A2, C0, C1, C2) BW3_ROTSTEP(R, A0, A1, A2, C2, C0, C1)

// Stride 2: the window's right column is the next window's left one, kept
// in a register (C0, then C2: two pixels per iteration).
#define BW3_ROT2LOAD(R, A0, A1, A2, C0, C1, C2) \
	LDV(C0, (R))
#define BW3_ROT2STEP(R, A0, A1, A2, P, M, N) \
	LDV(M, (R)(CX*1)); \
	LDV(N, (R)(CX*2)); \
	VFMADD231PS P, G0, A0; \
	VFMADD231PS M, G0, A1; \
	VFMADD231PS N, G0, A2; \
	ADDQ DX, R
#define BW3_ROT2A(R, A0, A1, A2, C0, C1, C2) BW3_ROT2STEP(R, A0, A1, A2, C0, C1, C2)
#define BW3_ROT2B(R, A0, A1, A2, C0, C1, C2) BW3_ROT2STEP(R, A0, A1, A2, C2, C1, C0)

#define BW3_BODY \
	MOVQ args+0(FP), DI; \
	MOVQ DWBW_CS(DI), CX; \
	MOVQ DWBW_STEP(DI), DX; \
	MOVQ DWBW_CC(DI), R13; \
	XORQ R14, R14; \
group: \
	GMASK; \
	MOVQ DWBW_ACC(DI), SI; \
	ADDQ R14, SI; \
	MOVQ DWBW_TS(DI), AX; \
	MOVQ SI, BX; \
	VMOVUPS (BX), A00; \
	VMOVUPS (BX)(AX*1), A01; \
	VMOVUPS (BX)(AX*2), A02; \
	LEAQ (BX)(AX*2), BX; \
	ADDQ AX, BX; \
	VMOVUPS (BX), A10; \
	VMOVUPS (BX)(AX*1), A11; \
	VMOVUPS (BX)(AX*2), A12; \
	LEAQ (BX)(AX*2), BX; \
	ADDQ AX, BX; \
	VMOVUPS (BX), A20; \
	VMOVUPS (BX)(AX*1), A21; \
	VMOVUPS (BX)(AX*2), A22; \
	XORQ AX, AX; \
	XORQ R12, R12; \
row: \
	MOVQ DWBW_IN(DI), R8; \
	ADDQ R14, R8; \
	ADDQ AX, R8; \
	MOVQ R8, R9; \
	ADDQ DWBW_RS(DI), R9; \
	MOVQ R9, R10; \
	ADDQ DWBW_RS(DI), R10; \
	MOVQ DWBW_G(DI), R11; \
	ADDQ R14, R11; \
	ADDQ R12, R11; \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_FIRST); \
	TESTQ $1, DWBW_FLAGS(DI); \
	JZ   firstdone; \
	BW3_ROWS(BW3_FIRSTR); \
firstdone: \
	BW3_ROWS(BW3_NEXT); \
	ADDQ CX, R11; \
	MOVQ DWBW_MID(DI), BX; \
	BW3_ROTLOOP; \
	TESTQ BX, BX; \
	JZ   last; \
mid: \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_MID); \
	ADDQ CX, R11; \
	DECQ BX; \
	JNZ  mid; \
last: \
	TESTQ $2, DWBW_FLAGS(DI); \
	JZ   rowdone; \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_LAST); \
rowdone: \
	ADDQ DWBW_INSTEP(DI), AX; \
	ADDQ DWBW_GSTEP(DI), R12; \
	CMPQ R12, DWBW_GEND(DI); \
	JLT  row; \
	MOVQ DWBW_TS(DI), AX; \
	MOVQ SI, BX; \
	VMOVUPS A00, (BX); \
	VMOVUPS A01, (BX)(AX*1); \
	VMOVUPS A02, (BX)(AX*2); \
	LEAQ (BX)(AX*2), BX; \
	ADDQ AX, BX; \
	VMOVUPS A10, (BX); \
	VMOVUPS A11, (BX)(AX*1); \
	VMOVUPS A12, (BX)(AX*2); \
	LEAQ (BX)(AX*2), BX; \
	ADDQ AX, BX; \
	VMOVUPS A20, (BX); \
	VMOVUPS A21, (BX)(AX*1); \
	VMOVUPS A22, (BX)(AX*2); \
	ADDQ $LANEB, R14; \
	SUBQ $LANES, R13; \
	JGT  group; \
	VZEROUPPER; \
	RET

// ---- AVX-512: 16-lane groups, the last masked by K1 (zeroing loads and
// products, merging sums, masked stores; masked-out lanes are not read).
#define LANES 16
#define LANEB 64
#define GMASK \
	MOVQ $16, AX; \
	CMPQ R13, AX; \
	CMOVQLT R13, AX; \
	LEAQ dwbMask16<>(SB), SI; \
	MOVWLZX (SI)(AX*2), AX; \
	KMOVW AX, K1
#define MUL(dst, mem, w) VMULPS.Z mem, w, K1, dst
#define FMA(acc, mem, w) VFMADD231PS mem, w, K1, acc
#define LDV(dst, mem) VMOVUPS.Z mem, K1, dst
#define STV(src, mem) VMOVUPS src, K1, mem
#define E0 Z9
#define O0 Z12
#define BI_ROTLOOP \
	CMPQ BX, $3; \
	JLT  rotdone; \
	ROWS(BI_ROTLOAD); \
rot: \
	ROWS(BI_ROT0); \
	BI_STORE; \
	ROWS(BI_ROT1); \
	BI_STORE; \
	ROWS(BI_ROT2); \
	BI_STORE; \
	SUBQ $3, BX; \
	CMPQ BX, $3; \
	JGE  rot; \
rotdone:

#define ROW0(op) op(R8, DWBI_D0, DWBI_T0, Z0, Z1, Z2, Z9, Z12, Z15, Z18, Z19, Z20)
#define ROW1(op) op(R9, DWBI_D1, DWBI_T1, Z3, Z4, Z5, Z10, Z13, Z16, Z21, Z22, Z23)
#define ROW2(op) op(R10, DWBI_D2, DWBI_T2, Z6, Z7, Z8, Z11, Z14, Z17, Z24, Z25, Z26)

#define ROWS(op) ROW0(op)
#define SUMS

// func dwbi1AVX512N1(args *dwbiArgs)
TEXT ·dwbi1AVX512N1(SB), NOSPLIT, $0-8
	BI1_BODY

// func dwbi2AVX512N1(args *dwbiArgs)
TEXT ·dwbi2AVX512N1(SB), NOSPLIT, $0-8
	BI2_BODY

#undef ROWS
#undef SUMS
#define ROWS(op) ROW0(op); ROW1(op)
#define SUMS VADDPS Z10, Z9, Z9; VADDPS Z13, Z12, Z12

// func dwbi1AVX512N2(args *dwbiArgs)
TEXT ·dwbi1AVX512N2(SB), NOSPLIT, $0-8
	BI1_BODY

// func dwbi2AVX512N2(args *dwbiArgs)
TEXT ·dwbi2AVX512N2(SB), NOSPLIT, $0-8
	BI2_BODY

// func dwbi2PairsAVX512(args *dwbiArgs)
//
// Stride 2, a run of row pairs (2p, 2p+1) with p+1 < oh: row 2p receives
// dout row p through kernel row 1; row 2p+1 receives row p through kernel
// row 2 and row p+1 through kernel row 0. Per channel group the nine taps
// stay in Z0-Z8 (Z(3ky+kx)) for the whole run; per dout pixel x of rows p
// and p+1 (A, B in Z9, Z11; pixel x+1 in Z10, Z12) it computes the four
// input pixels (2p or 2p+1, 2x or 2x+1) in Z13-Z16.
// Registers: R8, R9 dout rows p, p+1 at pixel x; R11, R10 din rows 2p,
// 2p+1 at pixel 2x; AX, DX byte offsets of the current pair in din and
// dout; others as for the other input-gradient kernels.
// args.d[0]: dout row p of the first pair; args.t[0]: tap (0, 0);
// args.rStep: bytes between pairs in din; args.dStep: between dout rows;
// args.dinRow: between din rows; args.rEnd: pairs × dStep.
TEXT ·dwbi2PairsAVX512(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ DWBI_CS(DI), CX
	MOVQ DWBI_TS(DI), R12
	MOVQ DWBI_CC(DI), R13
	XORQ R14, R14

pgroup:
	GMASK
	MOVQ DWBI_T0(DI), SI
	ADDQ R14, SI
	VMOVUPS (SI), Z0
	VMOVUPS (SI)(R12*1), Z1
	VMOVUPS (SI)(R12*2), Z2
	LEAQ (SI)(R12*2), SI
	ADDQ R12, SI
	VMOVUPS (SI), Z3
	VMOVUPS (SI)(R12*1), Z4
	VMOVUPS (SI)(R12*2), Z5
	LEAQ (SI)(R12*2), SI
	ADDQ R12, SI
	VMOVUPS (SI), Z6
	VMOVUPS (SI)(R12*1), Z7
	VMOVUPS (SI)(R12*2), Z8
	XORQ AX, AX
	XORQ DX, DX

ppair:
	MOVQ DWBI_D0(DI), R8
	ADDQ R14, R8
	ADDQ DX, R8
	MOVQ R8, R9
	ADDQ DWBI_DSTEP(DI), R9
	MOVQ DWBI_DIN(DI), R11
	ADDQ R14, R11
	ADDQ AX, R11
	MOVQ R11, R10
	ADDQ DWBI_DINROW(DI), R10
	MOVQ DWBI_OW(DI), BX
	DECQ BX
	JZ   pend

pstep:
	LDV(Z9, (R8))
	LDV(Z10, (R8)(CX*1))
	LDV(Z11, (R9))
	LDV(Z12, (R9)(CX*1))
	VMULPS Z9, Z4, Z13
	VMULPS Z9, Z5, Z14
	VFMADD231PS Z10, Z3, Z14
	VMULPS Z9, Z7, Z15
	VFMADD231PS Z11, Z1, Z15
	VMULPS Z9, Z8, Z16
	VFMADD231PS Z10, Z6, Z16
	VFMADD231PS Z11, Z2, Z16
	VFMADD231PS Z12, Z0, Z16
	STV(Z13, (R11))
	STV(Z14, (R11)(CX*1))
	STV(Z15, (R10))
	STV(Z16, (R10)(CX*1))
	ADDQ CX, R8
	ADDQ CX, R9
	LEAQ (R11)(CX*2), R11
	LEAQ (R10)(CX*2), R10
	DECQ BX
	JNZ  pstep

pend:
	// The last dout pixel: no pixel x+1; input column 2x+1 only if w is even.
	LDV(Z9, (R8))
	LDV(Z11, (R9))
	VMULPS Z9, Z4, Z13
	VMULPS Z9, Z7, Z15
	VFMADD231PS Z11, Z1, Z15
	STV(Z13, (R11))
	STV(Z15, (R10))
	CMPQ DWBI_WEVEN(DI), $0
	JEQ  pdone
	VMULPS Z9, Z5, Z14
	VMULPS Z9, Z8, Z16
	VFMADD231PS Z11, Z2, Z16
	STV(Z14, (R11)(CX*1))
	STV(Z16, (R10)(CX*1))

pdone:
	ADDQ DWBI_RSTEP(DI), AX
	ADDQ DWBI_DSTEP(DI), DX
	CMPQ DX, DWBI_REND(DI)
	JLT  ppair
	ADDQ $64, R14
	SUBQ $16, R13
	JGT  pgroup
	VZEROUPPER
	RET

#undef ROWS
#undef SUMS
#define ROWS(op) ROW0(op); ROW1(op); ROW2(op)
#define SUMS VADDPS Z10, Z9, Z9; VADDPS Z11, Z9, Z9

// func dwbi1AVX512N3(args *dwbiArgs)
TEXT ·dwbi1AVX512N3(SB), NOSPLIT, $0-8
	BI1_BODY

#undef ROWS
#undef SUMS

#define A0 Z0
#define A1 Z1
#define A2 Z2
#define B0 Z3
#define B1 Z4
#define B2 Z5
#define G0 Z6
#define G1 Z7

// func dwbwAVX512(args *dwbwArgs)
TEXT ·dwbwAVX512(SB), NOSPLIT, $0-8
	BW_BODY

#define C00 Z19
#define C01 Z20
#define C02 Z21
#define C10 Z22
#define C11 Z23
#define C12 Z24
#define C20 Z25
#define C21 Z26
#define C22 Z27
#define BW3_ROTLOOP \
	TESTQ $4, DWBW_FLAGS(DI); \
	JZ   rot2loop; \
	CMPQ BX, $3; \
	JLT  rotdone; \
	BW3_ROWS(BW3_ROTLOAD); \
rot: \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_ROT0); \
	ADDQ CX, R11; \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_ROT1); \
	ADDQ CX, R11; \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_ROT2); \
	ADDQ CX, R11; \
	SUBQ $3, BX; \
	CMPQ BX, $3; \
	JGE  rot; \
	JMP  rotdone; \
rot2loop: \
	CMPQ BX, $2; \
	JLT  rotdone; \
	BW3_ROWS(BW3_ROT2LOAD); \
rot2: \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_ROT2A); \
	ADDQ CX, R11; \
	LDV(G0, (R11)); \
	BW3_ROWS(BW3_ROT2B); \
	ADDQ CX, R11; \
	SUBQ $2, BX; \
	CMPQ BX, $2; \
	JGE  rot2; \
rotdone:
#define A00 Z10
#define A01 Z11
#define A02 Z12
#define A10 Z13
#define A11 Z14
#define A12 Z15
#define A20 Z16
#define A21 Z17
#define A22 Z18

// func dwbw3AVX512(args *dwbwArgs)
TEXT ·dwbw3AVX512(SB), NOSPLIT, $0-8
	BW3_BODY

#undef C00
#undef C01
#undef C02
#undef C10
#undef C11
#undef C12
#undef C20
#undef C21
#undef C22
#undef BW3_ROTLOOP

#undef A00
#undef A01
#undef A02
#undef A10
#undef A11
#undef A12
#undef A20
#undef A21
#undef A22

#undef LANES
#undef LANEB
#undef GMASK
#undef MUL
#undef FMA
#undef LDV
#undef STV
#undef E0
#undef O0
#undef BI_ROTLOOP
#undef ROW0
#undef ROW1
#undef ROW2
#undef A0
#undef A1
#undef A2
#undef B0
#undef B1
#undef B2
#undef G0
#undef G1

// ---- AVX2: 8-lane groups, all whole (the caller runs a partial last
// group in Go), so no masks.
#define LANES 8
#define LANEB 32
#define GMASK
#define MUL(dst, mem, w) VMULPS mem, w, dst
#define FMA(acc, mem, w) VFMADD231PS mem, w, acc
#define LDV(dst, mem) VMOVUPS mem, dst
#define STV(src, mem) VMOVUPS src, mem
#define E0 Y9
#define O0 Y12
#define BI_ROTLOOP

#define ROW0(op) op(R8, DWBI_D0, DWBI_T0, Y0, Y1, Y2, Y9, Y12, Y14, Y0, Y0, Y0)
#define ROW1(op) op(R9, DWBI_D1, DWBI_T1, Y3, Y4, Y5, Y10, Y13, Y15, Y0, Y0, Y0)
#define ROW2(op) op(R10, DWBI_D2, DWBI_T2, Y6, Y7, Y8, Y11, Y12, Y14, Y0, Y0, Y0)

#define ROWS(op) ROW0(op)
#define SUMS

// func dwbi1AVX2N1(args *dwbiArgs)
TEXT ·dwbi1AVX2N1(SB), NOSPLIT, $0-8
	BI1_BODY

// func dwbi2AVX2N1(args *dwbiArgs)
TEXT ·dwbi2AVX2N1(SB), NOSPLIT, $0-8
	BI2_BODY

#undef ROWS
#undef SUMS
#define ROWS(op) ROW0(op); ROW1(op)
#define SUMS VADDPS Y10, Y9, Y9; VADDPS Y13, Y12, Y12

// func dwbi1AVX2N2(args *dwbiArgs)
TEXT ·dwbi1AVX2N2(SB), NOSPLIT, $0-8
	BI1_BODY

// func dwbi2AVX2N2(args *dwbiArgs)
TEXT ·dwbi2AVX2N2(SB), NOSPLIT, $0-8
	BI2_BODY

#undef ROWS
#undef SUMS
#define ROWS(op) ROW0(op); ROW1(op); ROW2(op)
#define SUMS VADDPS Y10, Y9, Y9; VADDPS Y11, Y9, Y9

// func dwbi1AVX2N3(args *dwbiArgs)
TEXT ·dwbi1AVX2N3(SB), NOSPLIT, $0-8
	BI1_BODY

#undef ROWS
#undef SUMS

#define A0 Y0
#define A1 Y1
#define A2 Y2
#define B0 Y3
#define B1 Y4
#define B2 Y5
#define G0 Y6
#define G1 Y7

// func dwbwAVX2(args *dwbwArgs)
TEXT ·dwbwAVX2(SB), NOSPLIT, $0-8
	BW_BODY

#define A00 Y8
#define A01 Y9
#define A02 Y10
#define A10 Y11
#define A11 Y12
#define A12 Y13
#define A20 Y14
#define A21 Y15
#define A22 Y5
#define C00 Y0
#define C01 Y0
#define C02 Y0
#define C10 Y0
#define C11 Y0
#define C12 Y0
#define C20 Y0
#define C21 Y0
#define C22 Y0
#define BW3_ROTLOOP

// func dwbw3AVX2(args *dwbwArgs)
TEXT ·dwbw3AVX2(SB), NOSPLIT, $0-8
	BW3_BODY
