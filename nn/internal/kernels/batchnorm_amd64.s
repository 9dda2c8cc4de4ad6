//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 batch-norm kernels; see batchnorm.go for what they compute and
// batchnorm_amd64.go for the contracts.
//
// Every kernel walks the rows in blocks of blk rows (a few KB, contiguous),
// and within a block loops over channel groups of 16 (the last group masked
// by K1), and over the block's rows of the group innermost, c*4 bytes apart
// (R10): memory streams in order, one block at a time, while each group's
// per-channel constants are loaded once per block and its float64 sums stay
// in registers across the block's rows (added to memory once per block).
// Masked-out lanes are neither loaded nor stored, so no byte past the last
// channel is touched.
//
// Common registers:
//	CX   rows left, from the current block on
//	DX   c (channels)
//	R10  c*4: bytes between rows
//	R11  first channel of the current group
//	R12  rows in the current block; R13 the row counter within it
//	K1   the group's lanes; K3 = K1 >> 8, the lanes of its upper half (float64 sums)
//	Z2   0, Z3  6 (ReLU6 bounds)
//
// The ReLU6 mask is 0 < z*scale+shift < 6 (ordered compares: a NaN is
// outside); the clamp is max(0, s) then min(6, s) with s as the second source,
// so a NaN stays NaN.

// bnMask16<>[n]: the opmask of the first n lanes, n = 0..16.
DATA bnMask16<>+0(SB)/2, $0x0000
DATA bnMask16<>+2(SB)/2, $0x0001
DATA bnMask16<>+4(SB)/2, $0x0003
DATA bnMask16<>+6(SB)/2, $0x0007
DATA bnMask16<>+8(SB)/2, $0x000f
DATA bnMask16<>+10(SB)/2, $0x001f
DATA bnMask16<>+12(SB)/2, $0x003f
DATA bnMask16<>+14(SB)/2, $0x007f
DATA bnMask16<>+16(SB)/2, $0x00ff
DATA bnMask16<>+18(SB)/2, $0x01ff
DATA bnMask16<>+20(SB)/2, $0x03ff
DATA bnMask16<>+22(SB)/2, $0x07ff
DATA bnMask16<>+24(SB)/2, $0x0fff
DATA bnMask16<>+26(SB)/2, $0x1fff
DATA bnMask16<>+28(SB)/2, $0x3fff
DATA bnMask16<>+30(SB)/2, $0x7fff
DATA bnMask16<>+32(SB)/2, $0xffff
GLOBL bnMask16<>(SB), RODATA|NOPTR, $34

// GROUPMASK sets K1 (and K3) to the lanes of the group starting at R11.
// Clobbers AX, BX.
#define GROUPMASK \
	MOVQ    DX, AX; \
	SUBQ    R11, AX; \
	CMPQ    AX, $16; \
	JLE     2(PC); \
	MOVQ    $16, AX; \
	LEAQ    bnMask16<>(SB), BX; \
	MOVWLZX (BX)(AX*2), BX; \
	KMOVW   BX, K1; \
	KSHIFTRW $8, K1, K3

#define CONSTS \
	VXORPS       Z2, Z2, Z2; \
	MOVL         $0x40c00000, AX; \
	VPBROADCASTD AX, Z3

// BLOCK sets R12 to the rows of the next block: min(CX, blk).
#define BLOCK \
	MOVQ blk+0(FP), R12; \
	CMPQ CX, R12; \
	JGE  2(PC); \
	MOVQ CX, R12

// PREFETCH asks for the block two blocks past reg's (8 KB ahead for the
// usual 4 KB blocks), so that DRAM latency is hidden: the hardware
// prefetchers alone reach about a third of the bandwidth memmove gets here.
// Prefetches never fault, so reading past the end of the rows is harmless.
// Clobbers AX, BX.
#define PREFETCH(reg) \
	MOVQ       R12, AX; \
	IMULQ      R10, AX; \
	LEAQ       (reg)(AX*2), BX; \
	LEAQ       (BX)(AX*1), AX; \
	PREFETCHT0 (BX); \
	ADDQ       $64, BX; \
	CMPQ       BX, AX; \
	JB         -3(PC)

// ADVANCE moves reg past the block and leaves the block's bytes in AX.
#define ADVANCE(reg) \
	MOVQ  R12, AX; \
	IMULQ R10, AX; \
	ADDQ  AX, reg

// func bnStatsAVX512(blk int, z *float32, rows, c int, s, q *float64)
//
//	SI z of the block; Z0, Z1 sums (lower, upper 8 channels), Z2, Z3 sums of squares.
TEXT ·bnStatsAVX512(SB), NOSPLIT, $0-48
	MOVQ z+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ c+24(FP), DX
	MOVQ s+32(FP), R8
	MOVQ q+40(FP), R9
	LEAQ (DX*4), R10

statsBlock:
	BLOCK
	PREFETCH(SI)
	XORQ R11, R11

statsGroup:
	GROUPMASK
	VXORPD Z0, Z0, Z0
	VXORPD Z1, Z1, Z1
	VXORPD Z2, Z2, Z2
	VXORPD Z3, Z3, Z3
	LEAQ   (SI)(R11*4), DI
	MOVQ   R12, R13

statsRow:
	VCVTPS2PD.Z (DI), K1, Z8
	VCVTPS2PD.Z 32(DI), K3, Z9
	VADDPD      Z8, Z0, Z0
	VFMADD231PD Z8, Z8, Z2
	VADDPD      Z9, Z1, Z1
	VFMADD231PD Z9, Z9, Z3
	ADDQ        R10, DI
	DECQ        R13
	JNZ         statsRow

	VADDPD.Z (R8)(R11*8), Z0, K1, Z0
	VMOVUPD  Z0, K1, (R8)(R11*8)
	VADDPD.Z 64(R8)(R11*8), Z1, K3, Z1
	VMOVUPD  Z1, K3, 64(R8)(R11*8)
	VADDPD.Z (R9)(R11*8), Z2, K1, Z2
	VMOVUPD  Z2, K1, (R9)(R11*8)
	VADDPD.Z 64(R9)(R11*8), Z3, K3, Z3
	VMOVUPD  Z3, K3, 64(R9)(R11*8)
	ADDQ     $16, R11
	CMPQ     R11, DX
	JLT      statsGroup

	ADVANCE(SI)
	SUBQ R12, CX
	JNZ  statsBlock
	VZEROUPPER
	RET

// func bnApplyAVX512(blk int, z, y *float32, rows, c int, scale, shift *float32, relu int, res *float32)
//
//	SI z, DI y, R14 res of the block (res 0 if none); R8 scale, R9 shift;
//	Z0 scale, Z1 shift of the group; AX, BX, R13... per-row pointers below.
TEXT ·bnApplyAVX512(SB), NOSPLIT, $0-72
	MOVQ z+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ scale+40(FP), R8
	MOVQ shift+48(FP), R9
	MOVQ res+64(FP), R14
	LEAQ (DX*4), R10
	CONSTS

applyBlock:
	BLOCK
	PREFETCH(SI)
	XORQ R11, R11

applyGroup:
	GROUPMASK
	VMOVUPS.Z (R8)(R11*4), K1, Z0
	VMOVUPS.Z (R9)(R11*4), K1, Z1
	LEAQ      (SI)(R11*4), AX
	LEAQ      (DI)(R11*4), BX
	MOVQ      R12, R13
	TESTQ     R14, R14
	JNZ       applyRes
	CMPQ      relu+56(FP), $0
	JNE       applyRelu

applyNone:
	VMOVUPS.Z   (AX), K1, Z4
	VFMADD213PS Z1, Z0, Z4
	VMOVUPS     Z4, K1, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	DECQ        R13
	JNZ         applyNone
	JMP         applyNext

applyRelu:
	VMOVUPS.Z   (AX), K1, Z4
	VFMADD213PS Z1, Z0, Z4
	VMAXPS      Z4, Z2, Z4
	VMINPS      Z4, Z3, Z4
	VMOVUPS     Z4, K1, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	DECQ        R13
	JNZ         applyRelu
	JMP         applyNext

applyRes:
	PUSHQ R14
	LEAQ  (R14)(R11*4), R14

applyResRow:
	VMOVUPS.Z   (AX), K1, Z4
	VFMADD213PS Z1, Z0, Z4
	VADDPS.Z    (R14), Z4, K1, Z4
	VMOVUPS     Z4, K1, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R14
	DECQ        R13
	JNZ         applyResRow
	POPQ        R14

applyNext:
	ADDQ $16, R11
	CMPQ R11, DX
	JLT  applyGroup

	ADVANCE(SI)
	ADDQ  AX, DI
	TESTQ R14, R14
	JZ    2(PC)
	ADDQ  AX, R14
	SUBQ  R12, CX
	JNZ   applyBlock
	VZEROUPPER
	RET

// func bnBackReduceAVX512(blk int, dy, z *float32, rows, c int, scale, shift *float32, relu int, sg, sgz *float64)
//
//	SI dy, DI z of the block; Z0 scale, Z1 shift; Z8, Z9 sum g (lower, upper
//	8 channels), Z10, Z11 sum g*z; AX dy, BX z of the row; K4 the lanes where g = dy.
TEXT ·bnBackReduceAVX512(SB), NOSPLIT, $0-80
	MOVQ dy+8(FP), SI
	MOVQ z+16(FP), DI
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ scale+40(FP), R8
	MOVQ shift+48(FP), R9
	MOVQ relu+56(FP), R14
	LEAQ (DX*4), R10
	CONSTS

reduceBlock:
	BLOCK
	PREFETCH(SI)
	PREFETCH(DI)
	XORQ R11, R11

reduceGroup:
	GROUPMASK
	VMOVUPS.Z (R8)(R11*4), K1, Z0
	VMOVUPS.Z (R9)(R11*4), K1, Z1
	VXORPD    Z8, Z8, Z8
	VXORPD    Z9, Z9, Z9
	VXORPD    Z10, Z10, Z10
	VXORPD    Z11, Z11, Z11
	LEAQ      (SI)(R11*4), AX
	LEAQ      (DI)(R11*4), BX
	MOVQ      R12, R13

reduceRow:
	VMOVUPS.Z   (BX), K1, Z4
	TESTQ       R14, R14
	JZ          reduceAll
	VMOVAPS     Z4, Z5
	VFMADD213PS Z1, Z0, Z5
	VCMPPS      $0x1e, Z2, Z5, K1, K4
	VCMPPS      $0x11, Z3, Z5, K4, K4
	VMOVUPS.Z   (AX), K1, Z6
	VMOVAPS.Z   Z6, K4, Z6
	JMP         reduceSum

reduceAll:
	VMOVUPS.Z (AX), K1, Z6

reduceSum:
	VCVTPS2PD     Y6, Z12
	VEXTRACTF64X4 $1, Z6, Y13
	VCVTPS2PD     Y13, Z13
	VCVTPS2PD     Y4, Z14
	VEXTRACTF64X4 $1, Z4, Y15
	VCVTPS2PD     Y15, Z15
	VADDPD        Z12, Z8, Z8
	VADDPD        Z13, Z9, Z9
	VFMADD231PD   Z14, Z12, Z10
	VFMADD231PD   Z15, Z13, Z11
	ADDQ          R10, AX
	ADDQ          R10, BX
	DECQ          R13
	JNZ           reduceRow

	MOVQ     sg+64(FP), AX
	VADDPD.Z (AX)(R11*8), Z8, K1, Z8
	VMOVUPD  Z8, K1, (AX)(R11*8)
	VADDPD.Z 64(AX)(R11*8), Z9, K3, Z9
	VMOVUPD  Z9, K3, 64(AX)(R11*8)
	MOVQ     sgz+72(FP), AX
	VADDPD.Z (AX)(R11*8), Z10, K1, Z10
	VMOVUPD  Z10, K1, (AX)(R11*8)
	VADDPD.Z 64(AX)(R11*8), Z11, K3, Z11
	VMOVUPD  Z11, K3, 64(AX)(R11*8)
	ADDQ     $16, R11
	CMPQ     R11, DX
	JLT      reduceGroup

	ADVANCE(SI)
	ADDQ AX, DI
	SUBQ R12, CX
	JNZ  reduceBlock
	VZEROUPPER
	RET

// func bnBackApplyAVX512(blk int, dy, z, dz *float32, rows, c int, scale, shift *float32, relu int, a, b, cc *float32)
//
//	SI dy, DI z, R14 dz of the block; Z0 scale, Z1 shift, Z7 a, Z8 b, Z9 c of
//	the group; dz = a*g + (b*z + c); AX dy, BX z, R9 dz of the row.
TEXT ·bnBackApplyAVX512(SB), NOSPLIT, $0-96
	MOVQ dy+8(FP), SI
	MOVQ z+16(FP), DI
	MOVQ dz+24(FP), R14
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), DX
	LEAQ (DX*4), R10
	CONSTS

bapplyBlock:
	BLOCK
	PREFETCH(SI)
	PREFETCH(DI)
	PREFETCH(SI)
	XORQ R11, R11

bapplyGroup:
	GROUPMASK
	MOVQ      scale+48(FP), AX
	VMOVUPS.Z (AX)(R11*4), K1, Z0
	MOVQ      shift+56(FP), AX
	VMOVUPS.Z (AX)(R11*4), K1, Z1
	MOVQ      a+72(FP), AX
	VMOVUPS.Z (AX)(R11*4), K1, Z7
	MOVQ      b+80(FP), AX
	VMOVUPS.Z (AX)(R11*4), K1, Z8
	MOVQ      cc+88(FP), AX
	VMOVUPS.Z (AX)(R11*4), K1, Z9
	LEAQ      (SI)(R11*4), AX
	LEAQ      (DI)(R11*4), BX
	LEAQ      (R14)(R11*4), R9
	MOVQ      R12, R13
	CMPQ      relu+64(FP), $0
	JE        bapplyAll

bapplyRelu:
	VMOVUPS.Z   (BX), K1, Z4
	VMOVAPS     Z4, Z5
	VFMADD213PS Z1, Z0, Z5
	VCMPPS      $0x1e, Z2, Z5, K1, K4
	VCMPPS      $0x11, Z3, Z5, K4, K4
	VMOVUPS.Z   (AX), K1, Z6
	VMOVAPS.Z   Z6, K4, Z6
	VMOVAPS     Z9, Z10
	VFMADD231PS Z4, Z8, Z10
	VFMADD231PS Z6, Z7, Z10
	VMOVUPS     Z10, K1, (R9)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R9
	DECQ        R13
	JNZ         bapplyRelu
	JMP         bapplyNext

bapplyAll:
	VMOVUPS.Z   (BX), K1, Z4
	VMOVUPS.Z   (AX), K1, Z6
	VMOVAPS     Z9, Z10
	VFMADD231PS Z4, Z8, Z10
	VFMADD231PS Z6, Z7, Z10
	VMOVUPS     Z10, K1, (R9)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R9
	DECQ        R13
	JNZ         bapplyAll

bapplyNext:
	ADDQ $16, R11
	CMPQ R11, DX
	JLT  bapplyGroup

	ADVANCE(SI)
	ADDQ AX, DI
	ADDQ AX, R14
	SUBQ R12, CX
	JNZ  bapplyBlock
	VZEROUPPER
	RET

// AVX2 kernels: the same loops with groups of 8 channels and no masks (the
// caller only uses them when c is a multiple of 8, as MobileNetV2's channel
// counts are with round_nearest 8). Float64 sums are four lanes: lower and
// upper half of the group.

#define CONSTS2 \
	VXORPS       Y2, Y2, Y2; \
	MOVL         $0x40c00000, AX; \
	MOVL         AX, X3; \
	VBROADCASTSS X3, Y3

// func bnStatsAVX2(blk int, z *float32, rows, c int, s, q *float64)
TEXT ·bnStatsAVX2(SB), NOSPLIT, $0-48
	MOVQ z+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ c+24(FP), DX
	MOVQ s+32(FP), R8
	MOVQ q+40(FP), R9
	LEAQ (DX*4), R10

stats2Block:
	BLOCK
	PREFETCH(SI)
	XORQ R11, R11

stats2Group:
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	LEAQ   (SI)(R11*4), DI
	MOVQ   R12, R13

stats2Row:
	VCVTPS2PD   (DI), Y8
	VCVTPS2PD   16(DI), Y9
	VADDPD      Y8, Y0, Y0
	VFMADD231PD Y8, Y8, Y2
	VADDPD      Y9, Y1, Y1
	VFMADD231PD Y9, Y9, Y3
	ADDQ        R10, DI
	DECQ        R13
	JNZ         stats2Row

	VADDPD  (R8)(R11*8), Y0, Y0
	VMOVUPD Y0, (R8)(R11*8)
	VADDPD  32(R8)(R11*8), Y1, Y1
	VMOVUPD Y1, 32(R8)(R11*8)
	VADDPD  (R9)(R11*8), Y2, Y2
	VMOVUPD Y2, (R9)(R11*8)
	VADDPD  32(R9)(R11*8), Y3, Y3
	VMOVUPD Y3, 32(R9)(R11*8)
	ADDQ    $8, R11
	CMPQ    R11, DX
	JLT     stats2Group

	ADVANCE(SI)
	SUBQ R12, CX
	JNZ  stats2Block
	VZEROUPPER
	RET

// func bnApplyAVX2(blk int, z, y *float32, rows, c int, scale, shift *float32, relu int, res *float32)
TEXT ·bnApplyAVX2(SB), NOSPLIT, $0-72
	MOVQ z+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ scale+40(FP), R8
	MOVQ shift+48(FP), R9
	MOVQ res+64(FP), R14
	LEAQ (DX*4), R10
	CONSTS2

apply2Block:
	BLOCK
	PREFETCH(SI)
	XORQ R11, R11

apply2Group:
	VMOVUPS (R8)(R11*4), Y0
	VMOVUPS (R9)(R11*4), Y1
	LEAQ    (SI)(R11*4), AX
	LEAQ    (DI)(R11*4), BX
	MOVQ    R12, R13
	TESTQ   R14, R14
	JNZ     apply2Res
	CMPQ    relu+56(FP), $0
	JNE     apply2Relu

apply2None:
	VMOVUPS     (AX), Y4
	VFMADD213PS Y1, Y0, Y4
	VMOVUPS     Y4, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	DECQ        R13
	JNZ         apply2None
	JMP         apply2Next

apply2Relu:
	VMOVUPS     (AX), Y4
	VFMADD213PS Y1, Y0, Y4
	VMAXPS      Y4, Y2, Y4
	VMINPS      Y4, Y3, Y4
	VMOVUPS     Y4, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	DECQ        R13
	JNZ         apply2Relu
	JMP         apply2Next

apply2Res:
	PUSHQ R14
	LEAQ  (R14)(R11*4), R14

apply2ResRow:
	VMOVUPS     (AX), Y4
	VFMADD213PS Y1, Y0, Y4
	VADDPS      (R14), Y4, Y4
	VMOVUPS     Y4, (BX)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R14
	DECQ        R13
	JNZ         apply2ResRow
	POPQ        R14

apply2Next:
	ADDQ $8, R11
	CMPQ R11, DX
	JLT  apply2Group

	ADVANCE(SI)
	ADDQ  AX, DI
	TESTQ R14, R14
	JZ    2(PC)
	ADDQ  AX, R14
	SUBQ  R12, CX
	JNZ   apply2Block
	VZEROUPPER
	RET

// func bnBackReduceAVX2(blk int, dy, z *float32, rows, c int, scale, shift *float32, relu int, sg, sgz *float64)
//
//	Y6 is the ReLU6 mask (all ones where 0 < z*scale+shift < 6), ANDed into dy.
TEXT ·bnBackReduceAVX2(SB), NOSPLIT, $0-80
	MOVQ dy+8(FP), SI
	MOVQ z+16(FP), DI
	MOVQ rows+24(FP), CX
	MOVQ c+32(FP), DX
	MOVQ scale+40(FP), R8
	MOVQ shift+48(FP), R9
	MOVQ relu+56(FP), R14
	LEAQ (DX*4), R10
	CONSTS2

reduce2Block:
	BLOCK
	PREFETCH(SI)
	PREFETCH(DI)
	XORQ R11, R11

reduce2Group:
	VMOVUPS (R8)(R11*4), Y0
	VMOVUPS (R9)(R11*4), Y1
	VXORPD  Y8, Y8, Y8
	VXORPD  Y9, Y9, Y9
	VXORPD  Y10, Y10, Y10
	VXORPD  Y11, Y11, Y11
	LEAQ    (SI)(R11*4), AX
	LEAQ    (DI)(R11*4), BX
	MOVQ    R12, R13

reduce2Row:
	VMOVUPS     (BX), Y4
	VMOVUPS     (AX), Y6
	TESTQ       R14, R14
	JZ          reduce2Sum
	VMOVAPS     Y4, Y5
	VFMADD213PS Y1, Y0, Y5
	VCMPPS      $0x1e, Y2, Y5, Y7
	VCMPPS      $0x11, Y3, Y5, Y5
	VANDPS      Y7, Y5, Y5
	VANDPS      Y5, Y6, Y6

reduce2Sum:
	VCVTPS2PD     X6, Y12
	VEXTRACTF128  $1, Y6, X13
	VCVTPS2PD     X13, Y13
	VCVTPS2PD     X4, Y14
	VEXTRACTF128  $1, Y4, X15
	VCVTPS2PD     X15, Y15
	VADDPD        Y12, Y8, Y8
	VADDPD        Y13, Y9, Y9
	VFMADD231PD   Y14, Y12, Y10
	VFMADD231PD   Y15, Y13, Y11
	ADDQ          R10, AX
	ADDQ          R10, BX
	DECQ          R13
	JNZ           reduce2Row

	MOVQ    sg+64(FP), AX
	VADDPD  (AX)(R11*8), Y8, Y8
	VMOVUPD Y8, (AX)(R11*8)
	VADDPD  32(AX)(R11*8), Y9, Y9
	VMOVUPD Y9, 32(AX)(R11*8)
	MOVQ    sgz+72(FP), AX
	VADDPD  (AX)(R11*8), Y10, Y10
	VMOVUPD Y10, (AX)(R11*8)
	VADDPD  32(AX)(R11*8), Y11, Y11
	VMOVUPD Y11, 32(AX)(R11*8)
	ADDQ    $8, R11
	CMPQ    R11, DX
	JLT     reduce2Group

	ADVANCE(SI)
	ADDQ AX, DI
	SUBQ R12, CX
	JNZ  reduce2Block
	VZEROUPPER
	RET

// func bnBackApplyAVX2(blk int, dy, z, dz *float32, rows, c int, scale, shift *float32, relu int, a, b, cc *float32)
TEXT ·bnBackApplyAVX2(SB), NOSPLIT, $0-96
	MOVQ dy+8(FP), SI
	MOVQ z+16(FP), DI
	MOVQ dz+24(FP), R14
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), DX
	LEAQ (DX*4), R10
	CONSTS2

bapply2Block:
	BLOCK
	PREFETCH(SI)
	PREFETCH(DI)
	XORQ R11, R11

bapply2Group:
	MOVQ    scale+48(FP), AX
	VMOVUPS (AX)(R11*4), Y0
	MOVQ    shift+56(FP), AX
	VMOVUPS (AX)(R11*4), Y1
	MOVQ    a+72(FP), AX
	VMOVUPS (AX)(R11*4), Y7
	MOVQ    b+80(FP), AX
	VMOVUPS (AX)(R11*4), Y8
	MOVQ    cc+88(FP), AX
	VMOVUPS (AX)(R11*4), Y9
	LEAQ    (SI)(R11*4), AX
	LEAQ    (DI)(R11*4), BX
	LEAQ    (R14)(R11*4), R9
	MOVQ    R12, R13
	CMPQ    relu+64(FP), $0
	JE      bapply2All

bapply2Relu:
	VMOVUPS     (BX), Y4
	VMOVAPS     Y4, Y5
	VFMADD213PS Y1, Y0, Y5
	VCMPPS      $0x1e, Y2, Y5, Y11
	VCMPPS      $0x11, Y3, Y5, Y5
	VANDPS      Y11, Y5, Y5
	VANDPS      (AX), Y5, Y6
	VMOVAPS     Y9, Y10
	VFMADD231PS Y4, Y8, Y10
	VFMADD231PS Y6, Y7, Y10
	VMOVUPS     Y10, (R9)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R9
	DECQ        R13
	JNZ         bapply2Relu
	JMP         bapply2Next

bapply2All:
	VMOVUPS     (BX), Y4
	VMOVUPS     (AX), Y6
	VMOVAPS     Y9, Y10
	VFMADD231PS Y4, Y8, Y10
	VFMADD231PS Y6, Y7, Y10
	VMOVUPS     Y10, (R9)
	ADDQ        R10, AX
	ADDQ        R10, BX
	ADDQ        R10, R9
	DECQ        R13
	JNZ         bapply2All

bapply2Next:
	ADDQ $8, R11
	CMPQ R11, DX
	JLT  bapply2Group

	ADVANCE(SI)
	ADDQ AX, DI
	ADDQ AX, R14
	SUBQ R12, CX
	JNZ  bapply2Block
	VZEROUPPER
	RET

// func ntCopyAVX512(dst, src *float32, n int)
//
// Copies n floats (a multiple of 64) to dst, 64-byte aligned, with
// non-temporal stores: for a tensor written now and read back only by a later
// phase, too large to stay in cache, this saves the read of each line the
// store would otherwise fetch first. The SFENCE orders the stores before
// whatever tells another core the data is there.
TEXT ·ntCopyAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   ntDone

ntLoop:
	VMOVUPS  (SI), Z0
	VMOVUPS  64(SI), Z1
	VMOVUPS  128(SI), Z2
	VMOVUPS  192(SI), Z3
	VMOVNTPS Z0, (DI)
	VMOVNTPS Z1, 64(DI)
	VMOVNTPS Z2, 128(DI)
	VMOVNTPS Z3, 192(DI)
	ADDQ     $256, SI
	ADDQ     $256, DI
	DECQ     CX
	JNZ      ntLoop

ntDone:
	SFENCE
	VZEROUPPER
	RET

// func ntCopyAVX2(dst, src *float32, n int): ntCopyAVX512 with 32-byte stores.
TEXT ·ntCopyAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   nt2Done

nt2Loop:
	VMOVUPS  (SI), Y0
	VMOVUPS  32(SI), Y1
	VMOVUPS  64(SI), Y2
	VMOVUPS  96(SI), Y3
	VMOVNTPS Y0, (DI)
	VMOVNTPS Y1, 32(DI)
	VMOVNTPS Y2, 64(DI)
	VMOVNTPS Y3, 96(DI)
	VMOVUPS  128(SI), Y0
	VMOVUPS  160(SI), Y1
	VMOVUPS  192(SI), Y2
	VMOVUPS  224(SI), Y3
	VMOVNTPS Y0, 128(DI)
	VMOVNTPS Y1, 160(DI)
	VMOVNTPS Y2, 192(DI)
	VMOVNTPS Y3, 224(DI)
	ADDQ     $256, SI
	ADDQ     $256, DI
	DECQ     CX
	JNZ      nt2Loop

nt2Done:
	SFENCE
	VZEROUPPER
	RET
