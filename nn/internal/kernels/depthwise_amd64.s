//go:build amd64 && !purego

#include "textflag.h"

// Depthwise 3x3 row kernels; see depthwise_amd64.go for the contracts.
//
// func dwRowAVX512(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)
// func dwRow1AVX512(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)
// func dwRow2AVX512(r0, r1, r2, r3, out, wts, bias *float32, c, cp, w, flags, act int)
// func dwRowAVX2(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)
//
// dwRowAVX512 and dwRowAVX2 compute one output row, any stride, pixel by
// pixel (nine taps each). dwRow1AVX512 (one row) and dwRow2AVX512 (two rows)
// are for stride 1 and sweep input columns instead, each loaded once.
// All loop over channel groups (16 or 8 lanes) outermost: the group's nine
// weights, bias and clamp bounds stay in registers while the row's pixels
// are swept.
//
// flags (see depthwise.go): 1 window row 0 is padding, 2 window row 2 (3 for
// dwRow2AVX512) is padding, 4 the last pixel has its right column in the
// padding, 8 single pixel with both side columns in the padding (centre
// column only).
//
// Registers, dwRowAVX512 and dwRowAVX2 (the others differ as noted there):
//	CX   c*4: bytes between horizontally adjacent input pixels
//	DX   step*4: bytes between the windows of adjacent output pixels
//	SI   packed weights of the current channel group, tap 0
//	DI   bias of the current channel group, or 0 if there is none
//	R8, R9, R10  window rows 0, 1, 2 of the current output pixel, at kx = 0
//	R11  current output pixel
//	R12  cp*4: bytes between the packed taps
//	R13  channels left (current group included)
//	R14  byte offset of the current channel group
//	BX   pixel counter and scratch
//	Z0-Z8 / Y0-Y8  tap weights w[ky*3+kx] of the group
//	Z9 / Y9  bias, Z10 / Y10 lower clamp, Z11 / Y11 upper clamp
//	Z12-Z14 / Y12-Y14  sums of window rows 0, 1 (with the bias), 2
//
// Padding columns are left out by separate first- and last-pixel code, so no
// column outside the row is read. A padding row (window row 0 above the image
// or row 2 below it) is pointed at row 1, which exists, and its sum is made
// exactly zero: AVX-512 loads it under an all-zero opmask (K2 / K3: no
// load, zero value or unchanged sum); AVX2 ANDs its row sum with zero (AX
// points at the two 32-byte row masks of this output row), so even Inf or
// NaN in row 1 cannot leak in. The last channel group, if partial, is
// masked: K1 on AVX-512 (masked memory operands do not fault on masked-out
// lanes), VMASKMOVPS with the lane mask Y15 on AVX2. Weights are padded to
// 16 lanes with zeros, so their loads are never masked.
//
// The clamp is max(lo, s) then min(hi, s) with s as the second source, so a
// NaN sum stays NaN; for ActNone lo = -Inf and hi = +Inf.

// dwMask16<>[n]: the AVX-512 opmask of the first n lanes, n = 0..16.
DATA dwMask16<>+0(SB)/2, $0x0000
DATA dwMask16<>+2(SB)/2, $0x0001
DATA dwMask16<>+4(SB)/2, $0x0003
DATA dwMask16<>+6(SB)/2, $0x0007
DATA dwMask16<>+8(SB)/2, $0x000f
DATA dwMask16<>+10(SB)/2, $0x001f
DATA dwMask16<>+12(SB)/2, $0x003f
DATA dwMask16<>+14(SB)/2, $0x007f
DATA dwMask16<>+16(SB)/2, $0x00ff
DATA dwMask16<>+18(SB)/2, $0x01ff
DATA dwMask16<>+20(SB)/2, $0x03ff
DATA dwMask16<>+22(SB)/2, $0x07ff
DATA dwMask16<>+24(SB)/2, $0x0fff
DATA dwMask16<>+26(SB)/2, $0x1fff
DATA dwMask16<>+28(SB)/2, $0x3fff
DATA dwMask16<>+30(SB)/2, $0x7fff
DATA dwMask16<>+32(SB)/2, $0xffff
GLOBL dwMask16<>(SB), RODATA|NOPTR, $34

// dwMask8<>: 8 lanes of -1 then 8 lanes of 0; the 8 lanes from lane 8-n on
// are the AVX2 mask of the first n lanes.
DATA dwMask8<>+0(SB)/8, $-1
DATA dwMask8<>+8(SB)/8, $-1
DATA dwMask8<>+16(SB)/8, $-1
DATA dwMask8<>+24(SB)/8, $-1
DATA dwMask8<>+32(SB)/8, $0
DATA dwMask8<>+40(SB)/8, $0
DATA dwMask8<>+48(SB)/8, $0
DATA dwMask8<>+56(SB)/8, $0
GLOBL dwMask8<>(SB), RODATA|NOPTR, $64

// dwRowMask<>[flags&3]: 64 bytes, the AVX2 masks of window rows 0 and 2
// (all ones, or zero for a padding row).
DATA dwRowMask<>+0(SB)/8, $-1
DATA dwRowMask<>+8(SB)/8, $-1
DATA dwRowMask<>+16(SB)/8, $-1
DATA dwRowMask<>+24(SB)/8, $-1
DATA dwRowMask<>+32(SB)/8, $-1
DATA dwRowMask<>+40(SB)/8, $-1
DATA dwRowMask<>+48(SB)/8, $-1
DATA dwRowMask<>+56(SB)/8, $-1
DATA dwRowMask<>+64(SB)/8, $0
DATA dwRowMask<>+72(SB)/8, $0
DATA dwRowMask<>+80(SB)/8, $0
DATA dwRowMask<>+88(SB)/8, $0
DATA dwRowMask<>+96(SB)/8, $-1
DATA dwRowMask<>+104(SB)/8, $-1
DATA dwRowMask<>+112(SB)/8, $-1
DATA dwRowMask<>+120(SB)/8, $-1
DATA dwRowMask<>+128(SB)/8, $-1
DATA dwRowMask<>+136(SB)/8, $-1
DATA dwRowMask<>+144(SB)/8, $-1
DATA dwRowMask<>+152(SB)/8, $-1
DATA dwRowMask<>+160(SB)/8, $0
DATA dwRowMask<>+168(SB)/8, $0
DATA dwRowMask<>+176(SB)/8, $0
DATA dwRowMask<>+184(SB)/8, $0
DATA dwRowMask<>+192(SB)/8, $0
DATA dwRowMask<>+200(SB)/8, $0
DATA dwRowMask<>+208(SB)/8, $0
DATA dwRowMask<>+216(SB)/8, $0
DATA dwRowMask<>+224(SB)/8, $0
DATA dwRowMask<>+232(SB)/8, $0
DATA dwRowMask<>+240(SB)/8, $0
DATA dwRowMask<>+248(SB)/8, $0
GLOBL dwRowMask<>(SB), RODATA|NOPTR, $256

#define NEGINF $0xff800000
#define POSINF $0x7f800000
#define SIX $0x40c00000

// Registers that stay the same for all channel groups.
#define PROLOGUE \
	MOVQ c+48(FP), R13; \
	MOVQ R13, CX; \
	SHLQ $2, CX; \
	MOVQ cp+56(FP), R12; \
	SHLQ $2, R12; \
	MOVQ step+64(FP), DX; \
	SHLQ $2, DX; \
	MOVQ bias+40(FP), DI; \
	MOVQ wts+32(FP), SI; \
	XORQ R14, R14

// Point R8-R10 at column -1 (kx = 0 of output pixel 0) of the current
// group, and R11 at output pixel 0. Column -1 is never read.
#define ROWPTRS \
	MOVQ r0+0(FP), R8; \
	ADDQ R14, R8; \
	SUBQ CX, R8; \
	MOVQ r1+8(FP), R9; \
	ADDQ R14, R9; \
	SUBQ CX, R9; \
	MOVQ r2+16(FP), R10; \
	ADDQ R14, R10; \
	SUBQ CX, R10; \
	MOVQ out+24(FP), R11; \
	ADDQ R14, R11

#define ADVANCE \
	ADDQ DX, R8; \
	ADDQ DX, R9; \
	ADDQ DX, R10; \
	ADDQ CX, R11

// ---------------------------------------------------------------- AVX-512

// The nine tap weights of the group (zero-padded to 16 lanes in the packed
// layout, so full loads are in bounds).
#define WEIGHTS512 \
	MOVQ SI, BX; \
	VMOVUPS (BX), Z0; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z1; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z2; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z3; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z4; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z5; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z6; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z7; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Z8

#define FINISH512 \
	VADDPS Z13, Z12, Z12; \
	VADDPS Z14, Z12, Z12; \
	VMAXPS Z12, Z10, Z12; \
	VMINPS Z12, Z11, Z12; \
	VMOVUPS Z12, K1, (R11)

// All nine taps.
#define PIX512_FULL \
	VMULPS.Z (R8), Z0, K2, Z12; \
	VFMADD231PS (R8)(CX*1), Z1, K2, Z12; \
	VFMADD231PS (R8)(CX*2), Z2, K2, Z12; \
	VMOVAPS Z9, Z13; \
	VFMADD231PS (R9), Z3, K1, Z13; \
	VFMADD231PS (R9)(CX*1), Z4, K1, Z13; \
	VFMADD231PS (R9)(CX*2), Z5, K1, Z13; \
	VMULPS.Z (R10), Z6, K3, Z14; \
	VFMADD231PS (R10)(CX*1), Z7, K3, Z14; \
	VFMADD231PS (R10)(CX*2), Z8, K3, Z14; \
	FINISH512

// Left column in the padding: kx = 1, 2.
#define PIX512_LEFT \
	VMULPS.Z (R8)(CX*1), Z1, K2, Z12; \
	VFMADD231PS (R8)(CX*2), Z2, K2, Z12; \
	VMOVAPS Z9, Z13; \
	VFMADD231PS (R9)(CX*1), Z4, K1, Z13; \
	VFMADD231PS (R9)(CX*2), Z5, K1, Z13; \
	VMULPS.Z (R10)(CX*1), Z7, K3, Z14; \
	VFMADD231PS (R10)(CX*2), Z8, K3, Z14; \
	FINISH512

// Right column in the padding: kx = 0, 1.
#define PIX512_RIGHT \
	VMULPS.Z (R8), Z0, K2, Z12; \
	VFMADD231PS (R8)(CX*1), Z1, K2, Z12; \
	VMOVAPS Z9, Z13; \
	VFMADD231PS (R9), Z3, K1, Z13; \
	VFMADD231PS (R9)(CX*1), Z4, K1, Z13; \
	VMULPS.Z (R10), Z6, K3, Z14; \
	VFMADD231PS (R10)(CX*1), Z7, K3, Z14; \
	FINISH512

// Both side columns in the padding: kx = 1.
#define PIX512_CENTRE \
	VMULPS.Z (R8)(CX*1), Z1, K2, Z12; \
	VMOVAPS Z9, Z13; \
	VFMADD231PS (R9)(CX*1), Z4, K1, Z13; \
	VMULPS.Z (R10)(CX*1), Z7, K3, Z14; \
	FINISH512

TEXT ·dwRowAVX512(SB), NOSPLIT, $0-96
	PROLOGUE
	CMPQ act+88(FP), $0
	JNE  relu6
	MOVL NEGINF, AX
	VPBROADCASTD AX, Z10
	MOVL POSINF, AX
	VPBROADCASTD AX, Z11
	JMP  group

relu6:
	VPXORD Z10, Z10, Z10
	MOVL SIX, AX
	VPBROADCASTD AX, Z11

group:
	// K1 = lanes of this group; K2, K3 = K1 or 0 for window rows 0, 2.
	MOVL $0xffff, AX
	CMPQ R13, $16
	JGE  setmask
	LEAQ dwMask16<>(SB), AX
	MOVWLZX (AX)(R13*2), AX

setmask:
	KMOVW AX, K1
	KMOVW AX, K2
	KMOVW AX, K3
	TESTQ $1, flags+80(FP)
	JZ    nottop
	KXORW K2, K2, K2

nottop:
	TESTQ $2, flags+80(FP)
	JZ    notbottom
	KXORW K3, K3, K3

notbottom:
	WEIGHTS512
	TESTQ DI, DI
	JZ    nobias
	VMOVUPS.Z (DI), K1, Z9
	JMP   biasdone

nobias:
	VPXORD Z9, Z9, Z9

biasdone:
	ROWPTRS
	TESTQ $8, flags+80(FP)
	JNZ   single
	PIX512_LEFT
	ADVANCE
	MOVQ  mid+72(FP), BX
	TESTQ BX, BX
	JZ    last

midloop:
	PIX512_FULL
	ADVANCE
	DECQ BX
	JNZ  midloop

last:
	TESTQ $4, flags+80(FP)
	JZ    nextgroup
	PIX512_RIGHT
	JMP   nextgroup

single:
	PIX512_CENTRE

nextgroup:
	ADDQ  $64, R14
	ADDQ  $64, SI
	TESTQ DI, DI
	JZ    nobiasadv
	ADDQ  $64, DI

nobiasadv:
	SUBQ $16, R13
	JG   group
	VZEROUPPER
	RET

// ------------------------------------------------- AVX-512, stride 1
//
// With stride 1 each input column is used by three adjacent output pixels,
// so the sweep goes over input columns instead: column j (three vectors,
// rows masked by K2, K1, K3, padding rows loaded as zeros) completes output
// j-1 (kx = 2), continues output j (kx = 1) and starts output j+1 (kx = 0).
// Three accumulators rotate through these roles, hence the unrolling by 3.
// Every input vector is loaded once per channel group instead of three
// times. R8-R10 point at column j, R11 at output j-1.

// Column j into Z15-Z17.
#define COL512 \
	VMOVUPS.Z (R8), K2, Z15; \
	VMOVUPS.Z (R9), K1, Z16; \
	VMOVUPS.Z (R10), K3, Z17

// One column: P (output j-1) is completed and stored, Q (output j)
// continued, F (output j+1) started.
#define STEP512(P, Q, F) \
	COL512; \
	VFMADD231PS Z15, Z2, P; \
	VFMADD231PS Z16, Z5, P; \
	VFMADD231PS Z17, Z8, P; \
	VMAXPS P, Z10, P; \
	VMINPS P, Z11, P; \
	VMOVUPS P, K1, (R11); \
	VFMADD231PS Z15, Z1, Q; \
	VFMADD231PS Z16, Z4, Q; \
	VFMADD231PS Z17, Z7, Q; \
	VMOVAPS Z9, F; \
	VFMADD231PS Z15, Z0, F; \
	VFMADD231PS Z16, Z3, F; \
	VFMADD231PS Z17, Z6, F; \
	ADDQ CX, R8; \
	ADDQ CX, R9; \
	ADDQ CX, R10; \
	ADDQ CX, R11

// Store the last output (its right column is padding).
#define LAST512(P) \
	VMAXPS P, Z10, P; \
	VMINPS P, Z11, P; \
	VMOVUPS P, K1, (R11)

// func dwRow1AVX512(r0, r1, r2, out, wts, bias *float32, c, cp, step, mid, flags, act int)
// step must be c (stride 1); mid is w-2.
TEXT ·dwRow1AVX512(SB), NOSPLIT, $0-96
	PROLOGUE
	CMPQ act+88(FP), $0
	JNE  relu6
	MOVL NEGINF, AX
	VPBROADCASTD AX, Z10
	MOVL POSINF, AX
	VPBROADCASTD AX, Z11
	JMP  group

relu6:
	VPXORD Z10, Z10, Z10
	MOVL SIX, AX
	VPBROADCASTD AX, Z11

group:
	MOVL $0xffff, AX
	CMPQ R13, $16
	JGE  setmask
	LEAQ dwMask16<>(SB), AX
	MOVWLZX (AX)(R13*2), AX

setmask:
	KMOVW AX, K1
	KMOVW AX, K2
	KMOVW AX, K3
	TESTQ $1, flags+80(FP)
	JZ    nottop
	KXORW K2, K2, K2

nottop:
	TESTQ $2, flags+80(FP)
	JZ    notbottom
	KXORW K3, K3, K3

notbottom:
	WEIGHTS512
	TESTQ DI, DI
	JZ    nobias
	VMOVUPS.Z (DI), K1, Z9
	JMP   biasdone

nobias:
	VPXORD Z9, Z9, Z9

biasdone:
	ROWPTRS
	TESTQ $8, flags+80(FP)
	JNZ   single

	// Column 0: output 0 gets kx = 1 (Z13), output 1 kx = 0 (Z14).
	ADDQ CX, R8
	ADDQ CX, R9
	ADDQ CX, R10
	COL512
	VMOVAPS Z9, Z13
	VFMADD231PS Z15, Z1, Z13
	VFMADD231PS Z16, Z4, Z13
	VFMADD231PS Z17, Z7, Z13
	VMOVAPS Z9, Z14
	VFMADD231PS Z15, Z0, Z14
	VFMADD231PS Z16, Z3, Z14
	VFMADD231PS Z17, Z6, Z14
	ADDQ CX, R8
	ADDQ CX, R9
	ADDQ CX, R10

	// Columns 1 .. w-1.
	MOVQ mid+72(FP), BX
	INCQ BX

loop3:
	CMPQ BX, $3
	JLT  rem
	STEP512(Z13, Z14, Z12)
	STEP512(Z14, Z12, Z13)
	STEP512(Z12, Z13, Z14)
	SUBQ $3, BX
	JMP  loop3

rem:
	CMPQ BX, $1
	JE   rem1
	JG   rem2
	LAST512(Z13)
	JMP  nextgroup

rem1:
	STEP512(Z13, Z14, Z12)
	LAST512(Z14)
	JMP  nextgroup

rem2:
	STEP512(Z13, Z14, Z12)
	STEP512(Z14, Z12, Z13)
	LAST512(Z12)
	JMP  nextgroup

single:
	PIX512_CENTRE

nextgroup:
	ADDQ  $64, R14
	ADDQ  $64, SI
	TESTQ DI, DI
	JZ    nobiasadv
	ADDQ  $64, DI

nobiasadv:
	SUBQ $16, R13
	JG   group
	VZEROUPPER
	RET

// ------------------------------------ AVX-512, stride 1, two output rows
//
// dwRow1AVX512 on two adjacent output rows at once: input rows A, B, C, D
// (R8, R9, R10, AX) feed output rows B (at R11) and C (at R11+R12), so
// each column is four loads for two outputs, and the 18 FMAs of a column
// form six independent chains. Accumulators: Z12-Z14 for the upper output
// row, Z18-Z20 for the lower one; column in Z15, Z16, Z17, Z21.

#define COL2_512 \
	VMOVUPS.Z (R8), K2, Z15; \
	VMOVUPS.Z (R9), K1, Z16; \
	VMOVUPS.Z (R10), K1, Z17; \
	VMOVUPS.Z (AX), K3, Z21

#define STEP2_512(P, Q, F, P2, Q2, F2) \
	COL2_512; \
	VFMADD231PS Z15, Z2, P; \
	VFMADD231PS Z16, Z2, P2; \
	VFMADD231PS Z16, Z5, P; \
	VFMADD231PS Z17, Z5, P2; \
	VFMADD231PS Z17, Z8, P; \
	VFMADD231PS Z21, Z8, P2; \
	VMAXPS P, Z10, P; \
	VMAXPS P2, Z10, P2; \
	VMINPS P, Z11, P; \
	VMINPS P2, Z11, P2; \
	VMOVUPS P, K1, (R11); \
	VMOVUPS P2, K1, (R11)(R12*1); \
	VFMADD231PS Z15, Z1, Q; \
	VFMADD231PS Z16, Z1, Q2; \
	VFMADD231PS Z16, Z4, Q; \
	VFMADD231PS Z17, Z4, Q2; \
	VFMADD231PS Z17, Z7, Q; \
	VFMADD231PS Z21, Z7, Q2; \
	VMOVAPS Z9, F; \
	VMOVAPS Z9, F2; \
	VFMADD231PS Z15, Z0, F; \
	VFMADD231PS Z16, Z0, F2; \
	VFMADD231PS Z16, Z3, F; \
	VFMADD231PS Z17, Z3, F2; \
	VFMADD231PS Z17, Z6, F; \
	VFMADD231PS Z21, Z6, F2; \
	ADDQ CX, R8; \
	ADDQ CX, R9; \
	ADDQ CX, R10; \
	ADDQ CX, AX; \
	ADDQ CX, R11

#define LAST2_512(P, P2) \
	VMAXPS P, Z10, P; \
	VMAXPS P2, Z10, P2; \
	VMINPS P, Z11, P; \
	VMINPS P2, Z11, P2; \
	VMOVUPS P, K1, (R11); \
	VMOVUPS P2, K1, (R11)(R12*1)

// func dwRow2AVX512(r0, r1, r2, r3, out, wts, bias *float32, c, cp, w, flags, act int)
// Output rows at out and out + w*c; flags: 1 row r0 is padding, 2 row r3
// is padding, 8 w == 1.
TEXT ·dwRow2AVX512(SB), NOSPLIT, $0-96
	MOVQ c+56(FP), R13
	MOVQ R13, CX
	SHLQ $2, CX
	MOVQ w+72(FP), R12
	IMULQ CX, R12
	MOVQ bias+48(FP), DI
	MOVQ wts+40(FP), SI
	XORQ R14, R14
	CMPQ act+88(FP), $0
	JNE  relu6
	MOVL NEGINF, AX
	VPBROADCASTD AX, Z10
	MOVL POSINF, AX
	VPBROADCASTD AX, Z11
	JMP  group

relu6:
	VPXORD Z10, Z10, Z10
	MOVL SIX, AX
	VPBROADCASTD AX, Z11

group:
	MOVL $0xffff, AX
	CMPQ R13, $16
	JGE  setmask
	LEAQ dwMask16<>(SB), AX
	MOVWLZX (AX)(R13*2), AX

setmask:
	KMOVW AX, K1
	KMOVW AX, K2
	KMOVW AX, K3
	TESTQ $1, flags+80(FP)
	JZ    nottop
	KXORW K2, K2, K2

nottop:
	TESTQ $2, flags+80(FP)
	JZ    notbottom
	KXORW K3, K3, K3

notbottom:
	// Weights: BX walks the taps, AX is the tap stride.
	MOVQ cp+64(FP), AX
	SHLQ $2, AX
	MOVQ SI, BX
	VMOVUPS (BX), Z0
	ADDQ AX, BX
	VMOVUPS (BX), Z1
	ADDQ AX, BX
	VMOVUPS (BX), Z2
	ADDQ AX, BX
	VMOVUPS (BX), Z3
	ADDQ AX, BX
	VMOVUPS (BX), Z4
	ADDQ AX, BX
	VMOVUPS (BX), Z5
	ADDQ AX, BX
	VMOVUPS (BX), Z6
	ADDQ AX, BX
	VMOVUPS (BX), Z7
	ADDQ AX, BX
	VMOVUPS (BX), Z8
	TESTQ DI, DI
	JZ    nobias
	VMOVUPS.Z (DI), K1, Z9
	JMP   biasdone

nobias:
	VPXORD Z9, Z9, Z9

biasdone:
	// Rows at column 0.
	MOVQ r0+0(FP), R8
	ADDQ R14, R8
	MOVQ r1+8(FP), R9
	ADDQ R14, R9
	MOVQ r2+16(FP), R10
	ADDQ R14, R10
	MOVQ r3+24(FP), AX
	ADDQ R14, AX
	MOVQ out+32(FP), R11
	ADDQ R14, R11
	COL2_512
	TESTQ $8, flags+80(FP)
	JNZ   single

	// Column 0: outputs 0 get kx = 1 (Z13, Z19), outputs 1 kx = 0 (Z14, Z20).
	VMOVAPS Z9, Z13
	VMOVAPS Z9, Z19
	VFMADD231PS Z15, Z1, Z13
	VFMADD231PS Z16, Z1, Z19
	VFMADD231PS Z16, Z4, Z13
	VFMADD231PS Z17, Z4, Z19
	VFMADD231PS Z17, Z7, Z13
	VFMADD231PS Z21, Z7, Z19
	VMOVAPS Z9, Z14
	VMOVAPS Z9, Z20
	VFMADD231PS Z15, Z0, Z14
	VFMADD231PS Z16, Z0, Z20
	VFMADD231PS Z16, Z3, Z14
	VFMADD231PS Z17, Z3, Z20
	VFMADD231PS Z17, Z6, Z14
	VFMADD231PS Z21, Z6, Z20
	ADDQ CX, R8
	ADDQ CX, R9
	ADDQ CX, R10
	ADDQ CX, AX

	// Columns 1 .. w-1.
	MOVQ w+72(FP), BX
	DECQ BX

loop3:
	CMPQ BX, $3
	JLT  rem
	STEP2_512(Z13, Z14, Z12, Z19, Z20, Z18)
	STEP2_512(Z14, Z12, Z13, Z20, Z18, Z19)
	STEP2_512(Z12, Z13, Z14, Z18, Z19, Z20)
	SUBQ $3, BX
	JMP  loop3

rem:
	CMPQ BX, $1
	JE   rem1
	JG   rem2
	LAST2_512(Z13, Z19)
	JMP  nextgroup

rem1:
	STEP2_512(Z13, Z14, Z12, Z19, Z20, Z18)
	LAST2_512(Z14, Z20)
	JMP  nextgroup

rem2:
	STEP2_512(Z13, Z14, Z12, Z19, Z20, Z18)
	STEP2_512(Z14, Z12, Z13, Z20, Z18, Z19)
	LAST2_512(Z12, Z18)
	JMP  nextgroup

single:
	// w == 1: the centre column only.
	VMOVAPS Z9, Z12
	VMOVAPS Z9, Z18
	VFMADD231PS Z15, Z1, Z12
	VFMADD231PS Z16, Z1, Z18
	VFMADD231PS Z16, Z4, Z12
	VFMADD231PS Z17, Z4, Z18
	VFMADD231PS Z17, Z7, Z12
	VFMADD231PS Z21, Z7, Z18
	LAST2_512(Z12, Z18)

nextgroup:
	ADDQ  $64, R14
	ADDQ  $64, SI
	TESTQ DI, DI
	JZ    nobiasadv
	ADDQ  $64, DI

nobiasadv:
	SUBQ $16, R13
	JG   group
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2

#define WEIGHTS256 \
	MOVQ SI, BX; \
	VMOVUPS (BX), Y0; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y1; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y2; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y3; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y4; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y5; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y6; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y7; \
	ADDQ R12, BX; \
	VMOVUPS (BX), Y8

#define FINISH256 \
	VADDPS Y13, Y12, Y12; \
	VADDPS Y14, Y12, Y12; \
	VMAXPS Y12, Y10, Y12; \
	VMINPS Y12, Y11, Y12; \
	VMOVUPS Y12, (R11)

// Clear the sums of padding rows.
#define ROWMASK256 \
	VANDPS (AX), Y12, Y12; \
	VANDPS 32(AX), Y14, Y14

#define PIX256_FULL \
	VMULPS (R8), Y0, Y12; \
	VFMADD231PS (R8)(CX*1), Y1, Y12; \
	VFMADD231PS (R8)(CX*2), Y2, Y12; \
	VMOVAPS Y9, Y13; \
	VFMADD231PS (R9), Y3, Y13; \
	VFMADD231PS (R9)(CX*1), Y4, Y13; \
	VFMADD231PS (R9)(CX*2), Y5, Y13; \
	VMULPS (R10), Y6, Y14; \
	VFMADD231PS (R10)(CX*1), Y7, Y14; \
	VFMADD231PS (R10)(CX*2), Y8, Y14

#define PIX256_LEFT \
	VMULPS (R8)(CX*1), Y1, Y12; \
	VFMADD231PS (R8)(CX*2), Y2, Y12; \
	VMOVAPS Y9, Y13; \
	VFMADD231PS (R9)(CX*1), Y4, Y13; \
	VFMADD231PS (R9)(CX*2), Y5, Y13; \
	VMULPS (R10)(CX*1), Y7, Y14; \
	VFMADD231PS (R10)(CX*2), Y8, Y14

#define PIX256_RIGHT \
	VMULPS (R8), Y0, Y12; \
	VFMADD231PS (R8)(CX*1), Y1, Y12; \
	VMOVAPS Y9, Y13; \
	VFMADD231PS (R9), Y3, Y13; \
	VFMADD231PS (R9)(CX*1), Y4, Y13; \
	VMULPS (R10), Y6, Y14; \
	VFMADD231PS (R10)(CX*1), Y7, Y14

#define PIX256_CENTRE \
	VMULPS (R8)(CX*1), Y1, Y12; \
	VMOVAPS Y9, Y13; \
	VFMADD231PS (R9)(CX*1), Y4, Y13; \
	VMULPS (R10)(CX*1), Y7, Y14

// Masked variants for a last group of 1..7 channels (lane mask in Y15):
// every load goes through VMASKMOVPS into Y13 and one sum (Y12) is kept.
// Padding rows are skipped by loading them under the mask Y14 = Y15 AND
// their row mask, which is zero for them.
#define MTAP(addr, m, w) \
	VMASKMOVPS addr, m, Y13; \
	VFMADD231PS Y13, w, Y12

#define MFINISH256 \
	VMAXPS Y12, Y10, Y12; \
	VMINPS Y12, Y11, Y12; \
	VMASKMOVPS Y12, Y15, (R11)

#define MPIX256_FULL \
	VMOVAPS Y9, Y12; \
	VANDPS (AX), Y15, Y14; \
	MTAP((R8), Y14, Y0); \
	MTAP((R8)(CX*1), Y14, Y1); \
	MTAP((R8)(CX*2), Y14, Y2); \
	MTAP((R9), Y15, Y3); \
	MTAP((R9)(CX*1), Y15, Y4); \
	MTAP((R9)(CX*2), Y15, Y5); \
	VANDPS 32(AX), Y15, Y14; \
	MTAP((R10), Y14, Y6); \
	MTAP((R10)(CX*1), Y14, Y7); \
	MTAP((R10)(CX*2), Y14, Y8); \
	MFINISH256

#define MPIX256_LEFT \
	VMOVAPS Y9, Y12; \
	VANDPS (AX), Y15, Y14; \
	MTAP((R8)(CX*1), Y14, Y1); \
	MTAP((R8)(CX*2), Y14, Y2); \
	MTAP((R9)(CX*1), Y15, Y4); \
	MTAP((R9)(CX*2), Y15, Y5); \
	VANDPS 32(AX), Y15, Y14; \
	MTAP((R10)(CX*1), Y14, Y7); \
	MTAP((R10)(CX*2), Y14, Y8); \
	MFINISH256

#define MPIX256_RIGHT \
	VMOVAPS Y9, Y12; \
	VANDPS (AX), Y15, Y14; \
	MTAP((R8), Y14, Y0); \
	MTAP((R8)(CX*1), Y14, Y1); \
	MTAP((R9), Y15, Y3); \
	MTAP((R9)(CX*1), Y15, Y4); \
	VANDPS 32(AX), Y15, Y14; \
	MTAP((R10), Y14, Y6); \
	MTAP((R10)(CX*1), Y14, Y7); \
	MFINISH256

#define MPIX256_CENTRE \
	VMOVAPS Y9, Y12; \
	VANDPS (AX), Y15, Y14; \
	MTAP((R8)(CX*1), Y14, Y1); \
	MTAP((R9)(CX*1), Y15, Y4); \
	VANDPS 32(AX), Y15, Y14; \
	MTAP((R10)(CX*1), Y14, Y7); \
	MFINISH256

TEXT ·dwRowAVX2(SB), NOSPLIT, $0-96
	PROLOGUE
	CMPQ act+88(FP), $0
	JNE  relu6
	MOVL NEGINF, AX
	MOVQ AX, X10
	VBROADCASTSS X10, Y10
	MOVL POSINF, AX
	MOVQ AX, X11
	VBROADCASTSS X11, Y11
	JMP  rowmask

relu6:
	VXORPS Y10, Y10, Y10
	MOVL SIX, AX
	MOVQ AX, X11
	VBROADCASTSS X11, Y11

rowmask:
	// AX = dwRowMask<>[flags&3] for the whole call.
	MOVQ flags+80(FP), BX
	ANDQ $3, BX
	SHLQ $6, BX
	LEAQ dwRowMask<>(SB), AX
	ADDQ BX, AX

group:
	CMPQ R13, $8
	JLT  tail
	WEIGHTS256
	TESTQ DI, DI
	JZ    nobias
	VMOVUPS (DI), Y9
	JMP   biasdone

nobias:
	VXORPS Y9, Y9, Y9

biasdone:
	ROWPTRS
	TESTQ $8, flags+80(FP)
	JNZ   single
	PIX256_LEFT
	ROWMASK256
	FINISH256
	ADVANCE
	MOVQ  mid+72(FP), BX
	TESTQ BX, BX
	JZ    last
	TESTQ $3, flags+80(FP)
	JNZ   edgeloop

midloop:
	PIX256_FULL
	FINISH256
	ADVANCE
	DECQ BX
	JNZ  midloop
	JMP  last

edgeloop:
	PIX256_FULL
	ROWMASK256
	FINISH256
	ADVANCE
	DECQ BX
	JNZ  edgeloop

last:
	TESTQ $4, flags+80(FP)
	JZ    nextgroup
	PIX256_RIGHT
	ROWMASK256
	FINISH256
	JMP   nextgroup

single:
	PIX256_CENTRE
	ROWMASK256
	FINISH256

nextgroup:
	ADDQ  $32, R14
	ADDQ  $32, SI
	TESTQ DI, DI
	JZ    nobiasadv
	ADDQ  $32, DI

nobiasadv:
	SUBQ $8, R13
	JG   group
	VZEROUPPER
	RET

tail:
	// Y15 = mask of the first R13 (1..7) lanes.
	LEAQ dwMask8<>+32(SB), BX
	SHLQ $2, R13
	SUBQ R13, BX
	VMOVDQU (BX), Y15
	WEIGHTS256
	TESTQ DI, DI
	JZ    mnobias
	VMASKMOVPS (DI), Y15, Y9
	JMP   mbiasdone

mnobias:
	VXORPS Y9, Y9, Y9

mbiasdone:
	ROWPTRS
	TESTQ $8, flags+80(FP)
	JNZ   msingle
	MPIX256_LEFT
	ADVANCE
	MOVQ  mid+72(FP), BX
	TESTQ BX, BX
	JZ    mlast

mmidloop:
	MPIX256_FULL
	ADVANCE
	DECQ BX
	JNZ  mmidloop

mlast:
	TESTQ $4, flags+80(FP)
	JZ    mdone
	MPIX256_RIGHT
	JMP   mdone

msingle:
	MPIX256_CENTRE

mdone:
	VZEROUPPER
	RET
