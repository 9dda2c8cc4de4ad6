//go:build amd64 && !purego

#include "textflag.h"

// Micro-kernels of Gemm (see gemm.go for the packed layout of B and
// gemm_amd64.go for gemmArgs). Each call computes one column tile (1-3
// panels for AVX-512, one for AVX2) for all of its m rows, in blocks of up to
// MR rows (8 for AVX-512, 6 for AVX2): MR while more than 2*MR rows are left,
// then the rest in two nearly equal blocks, so that no block is short unless
// m itself is. A is read in place, with the lda stride; each row of the block
// is broadcast one float at a time against the panels of B at that k.
//
// Every block accumulates each output in the same order (bias, then k = 0,
// 1, ...), so results do not depend on how the caller splits the rows.
//
// The epilogue adds nothing for the bias (the accumulators start from it),
// clamps to [0, 6] for ReLU6, adds the residual and stores, all under the
// column mask of the tile, row by row for the rows of the block.
//
// Offsets in gemmArgs.
#define ARG_A    0
#define ARG_LDA  8
#define ARG_B    16
#define ARG_BSTR 24
#define ARG_K    32
#define ARG_M    40
#define ARG_BIAS 48
#define ARG_RES  56
#define ARG_LDR  64
#define ARG_C    72
#define ARG_LDC  80
#define ARG_MASK 88
#define ARG_RELU 96

// ReLU6's upper bound, 6.0 as float32 bits.
#define SIX $0x40c00000

// ---------------------------------------------------------------- AVX-512
//
// Registers:
//	DI	*gemmArgs
//	AX	A, first row of the current block
//	SI, R10, R11	A rows 0, 3 and 5 of the block, advancing along k
//	DX	lda in bytes
//	BX	B, advancing along k (64 bytes per k)
//	R8	bytes between panels
//	CX	C, current row
//	R12	res, current row (0 if none)
//	R13	rows left
//	R9	k counter, then rows in the block
//	Z0-Z23	accumulators: row r, panel p is Z(3r+p)
//	Z24-Z26	B of panels 0-2 at k; 6.0 in Z24 in the epilogue
//	Z27	broadcast A; 0 in the epilogue
//	Z28-Z30	bias of panels 0-2
//	K1-K3	column masks of panels 0-2
//
// The body is the same for 1, 2 and 3 panels: LDB, FMAROW, INIT, RELU, RES
// and STORE are defined for P panels before each TEXT, and ignore the
// accumulators of panels past P.

#define AVX512_BODY \
	MOVQ args+0(FP), DI; \
	MOVQ ARG_A(DI), AX; \
	MOVQ ARG_LDA(DI), DX; \
	MOVQ ARG_BSTR(DI), R8; \
	MOVQ ARG_RES(DI), R12; \
	MOVQ ARG_C(DI), CX; \
	MOVQ ARG_M(DI), R13; \
	MOVQ ARG_BIAS(DI), R9; \
	VMOVUPS (R9), Z28; \
	VMOVUPS 64(R9), Z29; \
	VMOVUPS 128(R9), Z30; \
	MOVQ ARG_MASK(DI), R9; \
	KMOVW R9, K1; \
	SHRQ $16, R9; \
	KMOVW R9, K2; \
	SHRQ $16, R9; \
	KMOVW R9, K3; \
rows: \
	MOVQ R13, R9; \
	CMPQ R13, $16; \
	JGT r8; \
	CMPQ R13, $8; \
	JLE pick; \
	INCQ R9; \
	SHRQ $1, R9; \
pick: \
	CMPQ R9, $4; \
	JGT pick58; \
	JEQ r4; \
	CMPQ R9, $2; \
	JGT r3; \
	JEQ r2; \
	CMPQ R9, $1; \
	JEQ r1; \
	JMP done; \
pick58: \
	CMPQ R9, $6; \
	JLT r5; \
	JEQ r6; \
	CMPQ R9, $7; \
	JEQ r7; \
r8: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	INIT(Z9, Z10, Z11); \
	INIT(Z12, Z13, Z14); \
	INIT(Z15, Z16, Z17); \
	INIT(Z18, Z19, Z20); \
	INIT(Z21, Z22, Z23); \
	SETUP6; \
loop8: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	FMAROW((R10), Z9, Z10, Z11); \
	FMAROW((SI)(DX*4), Z12, Z13, Z14); \
	FMAROW((R11), Z15, Z16, Z17); \
	FMAROW((R11)(DX*1), Z18, Z19, Z20); \
	FMAROW((R11)(DX*2), Z21, Z22, Z23); \
	NEXT6; \
	JNZ loop8; \
	MOVQ $8, R9; \
	JMP epi; \
r7: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	INIT(Z9, Z10, Z11); \
	INIT(Z12, Z13, Z14); \
	INIT(Z15, Z16, Z17); \
	INIT(Z18, Z19, Z20); \
	SETUP6; \
loop7: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	FMAROW((R10), Z9, Z10, Z11); \
	FMAROW((SI)(DX*4), Z12, Z13, Z14); \
	FMAROW((R11), Z15, Z16, Z17); \
	FMAROW((R11)(DX*1), Z18, Z19, Z20); \
	NEXT6; \
	JNZ loop7; \
	MOVQ $7, R9; \
	JMP epi; \
r6: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	INIT(Z9, Z10, Z11); \
	INIT(Z12, Z13, Z14); \
	INIT(Z15, Z16, Z17); \
	SETUP6; \
loop6: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	FMAROW((R10), Z9, Z10, Z11); \
	FMAROW((SI)(DX*4), Z12, Z13, Z14); \
	FMAROW((R11), Z15, Z16, Z17); \
	NEXT6; \
	JNZ loop6; \
	MOVQ $6, R9; \
	JMP epi; \
r5: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	INIT(Z9, Z10, Z11); \
	INIT(Z12, Z13, Z14); \
	SETUP4; \
loop5: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	FMAROW((R10), Z9, Z10, Z11); \
	FMAROW((SI)(DX*4), Z12, Z13, Z14); \
	NEXT4; \
	JNZ loop5; \
	MOVQ $5, R9; \
	JMP epi; \
r4: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	INIT(Z9, Z10, Z11); \
	SETUP4; \
loop4: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	FMAROW((R10), Z9, Z10, Z11); \
	NEXT4; \
	JNZ loop4; \
	MOVQ $4, R9; \
	JMP epi; \
r3: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	INIT(Z6, Z7, Z8); \
	SETUP1; \
loop3: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	FMAROW((SI)(DX*2), Z6, Z7, Z8); \
	NEXT1; \
	JNZ loop3; \
	MOVQ $3, R9; \
	JMP epi; \
r2: \
	INIT(Z0, Z1, Z2); \
	INIT(Z3, Z4, Z5); \
	SETUP1; \
loop2: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	FMAROW((SI)(DX*1), Z3, Z4, Z5); \
	NEXT1; \
	JNZ loop2; \
	MOVQ $2, R9; \
	JMP epi; \
r1: \
	INIT(Z0, Z1, Z2); \
	SETUP1; \
loop1: \
	LDB; \
	FMAROW((SI), Z0, Z1, Z2); \
	NEXT1; \
	JNZ loop1; \
	MOVQ $1, R9; \
epi: \
	SUBQ R9, R13; \
	MOVQ R9, SI; \
	IMULQ DX, SI; \
	ADDQ SI, AX; \
	CMPQ ARG_RELU(DI), $0; \
	JEQ norelu; \
	VPXORD Z27, Z27, Z27; \
	MOVL SIX, SI; \
	VPBROADCASTD SI, Z24; \
	RELU(Z0, Z1, Z2); \
	RELU(Z3, Z4, Z5); \
	RELU(Z6, Z7, Z8); \
	RELU(Z9, Z10, Z11); \
	RELU(Z12, Z13, Z14); \
	RELU(Z15, Z16, Z17); \
	RELU(Z18, Z19, Z20); \
	RELU(Z21, Z22, Z23); \
norelu: \
	TESTQ R12, R12; \
	JEQ store; \
	MOVQ R9, R10; \
	RES(Z0, Z1, Z2); \
	DECQ R10; \
	JEQ store; \
	RES(Z3, Z4, Z5); \
	DECQ R10; \
	JEQ store; \
	RES(Z6, Z7, Z8); \
	DECQ R10; \
	JEQ store; \
	RES(Z9, Z10, Z11); \
	DECQ R10; \
	JEQ store; \
	RES(Z12, Z13, Z14); \
	DECQ R10; \
	JEQ store; \
	RES(Z15, Z16, Z17); \
	DECQ R10; \
	JEQ store; \
	RES(Z18, Z19, Z20); \
	DECQ R10; \
	JEQ store; \
	RES(Z21, Z22, Z23); \
store: \
	STORE(Z0, Z1, Z2); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z3, Z4, Z5); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z6, Z7, Z8); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z9, Z10, Z11); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z12, Z13, Z14); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z15, Z16, Z17); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z18, Z19, Z20); \
	DECQ R9; \
	JEQ rows; \
	STORE(Z21, Z22, Z23); \
	JMP rows; \
done: \
	VZEROUPPER; \
	RET

// Pointers to the rows of a block of up to 3, 5 or 8 rows of A; R9 = K.
// Rows 0-2 are SI + (0, 1, 2)*DX, row 3 is R10, row 4 SI + 4*DX, and
// rows 5-7 are R11 + (0, 1, 2)*DX.
#define SETUP1 \
	MOVQ AX, SI; \
	MOVQ ARG_B(DI), BX; \
	MOVQ ARG_K(DI), R9
#define SETUP4 \
	SETUP1; \
	LEAQ (AX)(DX*2), R10; \
	ADDQ DX, R10
#define SETUP6 \
	SETUP4; \
	LEAQ (R10)(DX*2), R11

// Step to the next k; sets the flags for JNZ.
#define NEXT1 \
	ADDQ $4, SI; \
	ADDQ $64, BX; \
	DECQ R9
#define NEXT4 \
	ADDQ $4, R10; \
	NEXT1
#define NEXT6 \
	ADDQ $4, R11; \
	NEXT4

// One panel.
#define LDB VMOVUPS (BX), Z24
#define FMAROW(src, z0, z1, z2) VBROADCASTSS src, Z27; VFMADD231PS Z24, Z27, z0
#define INIT(z0, z1, z2) VMOVAPS Z28, z0
#define RELU(z0, z1, z2) VMAXPS Z27, z0, z0; VMINPS Z24, z0, z0
#define RES(z0, z1, z2) VADDPS (R12), z0, K1, z0; ADDQ ARG_LDR(DI), R12
#define STORE(z0, z1, z2) VMOVUPS z0, K1, (CX); ADDQ ARG_LDC(DI), CX

// func gemmAVX512P1(args *gemmArgs)
TEXT ·gemmAVX512P1(SB), NOSPLIT, $0-8
	AVX512_BODY

#undef LDB
#undef FMAROW
#undef INIT
#undef RELU
#undef RES
#undef STORE

// Two panels.
#define LDB VMOVUPS (BX), Z24; VMOVUPS (BX)(R8*1), Z25
#define FMAROW(src, z0, z1, z2) VBROADCASTSS src, Z27; VFMADD231PS Z24, Z27, z0; VFMADD231PS Z25, Z27, z1
#define INIT(z0, z1, z2) VMOVAPS Z28, z0; VMOVAPS Z29, z1
#define RELU(z0, z1, z2) VMAXPS Z27, z0, z0; VMINPS Z24, z0, z0; VMAXPS Z27, z1, z1; VMINPS Z24, z1, z1
#define RES(z0, z1, z2) VADDPS (R12), z0, K1, z0; VADDPS 64(R12), z1, K2, z1; ADDQ ARG_LDR(DI), R12
#define STORE(z0, z1, z2) VMOVUPS z0, K1, (CX); VMOVUPS z1, K2, 64(CX); ADDQ ARG_LDC(DI), CX

// func gemmAVX512P2(args *gemmArgs)
TEXT ·gemmAVX512P2(SB), NOSPLIT, $0-8
	AVX512_BODY

#undef LDB
#undef FMAROW
#undef INIT
#undef RELU
#undef RES
#undef STORE

// Three panels.
#define LDB VMOVUPS (BX), Z24; VMOVUPS (BX)(R8*1), Z25; VMOVUPS (BX)(R8*2), Z26
#define FMAROW(src, z0, z1, z2) VBROADCASTSS src, Z27; VFMADD231PS Z24, Z27, z0; VFMADD231PS Z25, Z27, z1; VFMADD231PS Z26, Z27, z2
#define INIT(z0, z1, z2) VMOVAPS Z28, z0; VMOVAPS Z29, z1; VMOVAPS Z30, z2
#define RELU(z0, z1, z2) VMAXPS Z27, z0, z0; VMINPS Z24, z0, z0; VMAXPS Z27, z1, z1; VMINPS Z24, z1, z1; VMAXPS Z27, z2, z2; VMINPS Z24, z2, z2
#define RES(z0, z1, z2) VADDPS (R12), z0, K1, z0; VADDPS 64(R12), z1, K2, z1; VADDPS 128(R12), z2, K3, z2; ADDQ ARG_LDR(DI), R12
#define STORE(z0, z1, z2) VMOVUPS z0, K1, (CX); VMOVUPS z1, K2, 64(CX); VMOVUPS z2, K3, 128(CX); ADDQ ARG_LDC(DI), CX

// func gemmAVX512P3(args *gemmArgs)
TEXT ·gemmAVX512P3(SB), NOSPLIT, $0-8
	AVX512_BODY

#undef LDB
#undef FMAROW
#undef INIT
#undef RELU
#undef RES
#undef STORE

// ---------------------------------------------------------------- AVX2
//
// One panel (16 columns = 2 ymm) per call.
// Registers:
//	DI	*gemmArgs
//	AX	A, first row of the current block
//	SI, R10	A rows 0 and 3 of the block, advancing along k
//	DX	lda in bytes
//	BX	B, advancing along k (64 bytes per k)
//	R8	bias (16 floats, zero-padded)
//	CX	C, current row
//	R12	res, current row (0 if none)
//	R13	rows left
//	R9	k counter, then rows in the block
//	Y0-Y11	accumulators: row r is Y(2r), Y(2r+1)
//	Y12, Y13	B at k; in the epilogue, column masks
//	Y14, Y15	broadcast A; in the epilogue 0 and 6.0, then a temporary

#define LDB2 VMOVUPS (BX), Y12; VMOVUPS 32(BX), Y13
#define FMAROW2(src, y0, y1, t) VBROADCASTSS src, t; VFMADD231PS Y12, t, y0; VFMADD231PS Y13, t, y1
#define INIT2(y0, y1) VMOVUPS (R8), y0; VMOVUPS 32(R8), y1
#define SETUP2_1 MOVQ AX, SI; MOVQ ARG_B(DI), BX; MOVQ ARG_K(DI), R9
#define SETUP2_4 SETUP2_1; LEAQ (AX)(DX*2), R10; ADDQ DX, R10
#define NEXT2_4 ADDQ $4, SI; ADDQ $4, R10; ADDQ $64, BX; DECQ R9
#define NEXT2_1 ADDQ $4, SI; ADDQ $64, BX; DECQ R9
#define RELU2(y0, y1) VMAXPS Y14, y0, y0; VMINPS Y15, y0, y0; VMAXPS Y14, y1, y1; VMINPS Y15, y1, y1
#define RESF2(y0, y1) VADDPS (R12), y0, y0; VADDPS 32(R12), y1, y1; ADDQ ARG_LDR(DI), R12
#define STF2(y0, y1) VMOVUPS y0, (CX); VMOVUPS y1, 32(CX); ADDQ ARG_LDC(DI), CX
#define RESM2(y0, y1) VMASKMOVPS (R12), Y12, Y14; VADDPS Y14, y0, y0; VMASKMOVPS 32(R12), Y13, Y14; VADDPS Y14, y1, y1; ADDQ ARG_LDR(DI), R12
#define STM2(y0, y1) VMASKMOVPS y0, Y12, (CX); VMASKMOVPS y1, Y13, 32(CX); ADDQ ARG_LDC(DI), CX

// func gemmAVX2P1(args *gemmArgs)
TEXT ·gemmAVX2P1(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ ARG_A(DI), AX
	MOVQ ARG_LDA(DI), DX
	MOVQ ARG_BIAS(DI), R8
	MOVQ ARG_RES(DI), R12
	MOVQ ARG_C(DI), CX
	MOVQ ARG_M(DI), R13

	// Rows in the next block: 6 while more than 12 are left, then the
	// rest in two nearly equal blocks, so no block but a lone one is short.
rows:
	MOVQ R13, R9
	CMPQ R13, $12
	JGT  r6
	CMPQ R13, $6
	JLE  pick
	INCQ R9
	SHRQ $1, R9

pick:
	CMPQ R9, $3
	JGT  pick46
	JEQ  r3
	CMPQ R9, $1
	JGT  r2
	JEQ  r1
	JMP  done

pick46:
	CMPQ R9, $5
	JLT  r4
	JEQ  r5

r6:
	INIT2(Y0, Y1)
	INIT2(Y2, Y3)
	INIT2(Y4, Y5)
	INIT2(Y6, Y7)
	INIT2(Y8, Y9)
	INIT2(Y10, Y11)
	SETUP2_4

loop6:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	FMAROW2((SI)(DX*1), Y2, Y3, Y15)
	FMAROW2((SI)(DX*2), Y4, Y5, Y14)
	FMAROW2((R10), Y6, Y7, Y15)
	FMAROW2((R10)(DX*1), Y8, Y9, Y14)
	FMAROW2((R10)(DX*2), Y10, Y11, Y15)
	NEXT2_4
	JNZ  loop6
	MOVQ $6, R9
	JMP  epi

r5:
	INIT2(Y0, Y1)
	INIT2(Y2, Y3)
	INIT2(Y4, Y5)
	INIT2(Y6, Y7)
	INIT2(Y8, Y9)
	SETUP2_4

loop5:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	FMAROW2((SI)(DX*1), Y2, Y3, Y15)
	FMAROW2((SI)(DX*2), Y4, Y5, Y14)
	FMAROW2((R10), Y6, Y7, Y15)
	FMAROW2((R10)(DX*1), Y8, Y9, Y14)
	NEXT2_4
	JNZ  loop5
	MOVQ $5, R9
	JMP  epi

r4:
	INIT2(Y0, Y1)
	INIT2(Y2, Y3)
	INIT2(Y4, Y5)
	INIT2(Y6, Y7)
	SETUP2_4

loop4:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	FMAROW2((SI)(DX*1), Y2, Y3, Y15)
	FMAROW2((SI)(DX*2), Y4, Y5, Y14)
	FMAROW2((R10), Y6, Y7, Y15)
	NEXT2_4
	JNZ  loop4
	MOVQ $4, R9
	JMP  epi

r3:
	INIT2(Y0, Y1)
	INIT2(Y2, Y3)
	INIT2(Y4, Y5)
	SETUP2_1

loop3:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	FMAROW2((SI)(DX*1), Y2, Y3, Y15)
	FMAROW2((SI)(DX*2), Y4, Y5, Y14)
	NEXT2_1
	JNZ  loop3
	MOVQ $3, R9
	JMP  epi

r2:
	INIT2(Y0, Y1)
	INIT2(Y2, Y3)
	SETUP2_1

loop2:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	FMAROW2((SI)(DX*1), Y2, Y3, Y15)
	NEXT2_1
	JNZ  loop2
	MOVQ $2, R9
	JMP  epi

r1:
	INIT2(Y0, Y1)
	SETUP2_1

loop1:
	LDB2
	FMAROW2((SI), Y0, Y1, Y14)
	NEXT2_1
	JNZ  loop1
	MOVQ $1, R9

epi:
	SUBQ  R9, R13
	MOVQ  R9, SI
	IMULQ DX, SI
	ADDQ  SI, AX
	CMPQ  ARG_RELU(DI), $0
	JEQ   norelu
	VXORPS Y14, Y14, Y14
	MOVL  SIX, SI
	MOVQ  SI, X15
	VBROADCASTSS X15, Y15
	RELU2(Y0, Y1)
	RELU2(Y2, Y3)
	RELU2(Y4, Y5)
	RELU2(Y6, Y7)
	RELU2(Y8, Y9)
	RELU2(Y10, Y11)

norelu:
	CMPQ ARG_MASK(DI), $16
	JNE  partial
	TESTQ R12, R12
	JEQ  fstore
	MOVQ R9, R10
	RESF2(Y0, Y1)
	DECQ R10
	JEQ  fstore
	RESF2(Y2, Y3)
	DECQ R10
	JEQ  fstore
	RESF2(Y4, Y5)
	DECQ R10
	JEQ  fstore
	RESF2(Y6, Y7)
	DECQ R10
	JEQ  fstore
	RESF2(Y8, Y9)
	DECQ R10
	JEQ  fstore
	RESF2(Y10, Y11)

fstore:
	STF2(Y0, Y1)
	DECQ R9
	JEQ  rows
	STF2(Y2, Y3)
	DECQ R9
	JEQ  rows
	STF2(Y4, Y5)
	DECQ R9
	JEQ  rows
	STF2(Y6, Y7)
	DECQ R9
	JEQ  rows
	STF2(Y8, Y9)
	DECQ R9
	JEQ  rows
	STF2(Y10, Y11)
	JMP  rows

partial:
	// Lane j of the masks is all ones iff j < valid columns:
	// Y12 = tab[16-valid:][:8], Y13 = tab[24-valid:][:8].
	MOVQ $16, SI
	SUBQ ARG_MASK(DI), SI
	LEAQ gemmMaskTab<>(SB), R11
	VMOVUPS (R11)(SI*4), Y12
	VMOVUPS 32(R11)(SI*4), Y13
	TESTQ R12, R12
	JEQ  pstore
	MOVQ R9, R10
	RESM2(Y0, Y1)
	DECQ R10
	JEQ  pstore
	RESM2(Y2, Y3)
	DECQ R10
	JEQ  pstore
	RESM2(Y4, Y5)
	DECQ R10
	JEQ  pstore
	RESM2(Y6, Y7)
	DECQ R10
	JEQ  pstore
	RESM2(Y8, Y9)
	DECQ R10
	JEQ  pstore
	RESM2(Y10, Y11)

pstore:
	STM2(Y0, Y1)
	DECQ R9
	JEQ  rows
	STM2(Y2, Y3)
	DECQ R9
	JEQ  rows
	STM2(Y4, Y5)
	DECQ R9
	JEQ  rows
	STM2(Y6, Y7)
	DECQ R9
	JEQ  rows
	STM2(Y8, Y9)
	DECQ R9
	JEQ  rows
	STM2(Y10, Y11)
	JMP  rows

done:
	VZEROUPPER
	RET

// 16 lanes of all ones, then 16 of zeros.
DATA gemmMaskTab<>+0(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+8(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+16(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+24(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+32(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+40(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+48(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+56(SB)/8, $0xffffffffffffffff
DATA gemmMaskTab<>+64(SB)/8, $0
DATA gemmMaskTab<>+72(SB)/8, $0
DATA gemmMaskTab<>+80(SB)/8, $0
DATA gemmMaskTab<>+88(SB)/8, $0
DATA gemmMaskTab<>+96(SB)/8, $0
DATA gemmMaskTab<>+104(SB)/8, $0
DATA gemmMaskTab<>+112(SB)/8, $0
DATA gemmMaskTab<>+120(SB)/8, $0
GLOBL gemmMaskTab<>(SB), RODATA|NOPTR, $128
