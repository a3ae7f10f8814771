#include "textflag.h"

// func unshuffle4Blocks(dst, s0, s1, s2, s3 *byte, blocks int)
// Interleaves 16 bytes of each plane into 64 bytes of dst per block:
// PUNPCKLBW/PUNPCKHBW zip planes 0+1 and 2+3 into byte pairs, PUNPCKLWL and
// PUNPCKHWL zip the pairs into 4-byte words. SSE2, which every amd64 has.
TEXT ·unshuffle4Blocks(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ s0+8(FP), SI
	MOVQ s1+16(FP), R8
	MOVQ s2+24(FP), R9
	MOVQ s3+32(FP), R10
	MOVQ blocks+40(FP), CX
	XORQ AX, AX

loop:
	TESTQ CX, CX
	JZ    done
	MOVOU (SI)(AX*1), X0
	MOVOU (R8)(AX*1), X1
	MOVOU (R9)(AX*1), X2
	MOVOU (R10)(AX*1), X3
	MOVO  X0, X4
	PUNPCKLBW X1, X4
	PUNPCKHBW X1, X0
	MOVO  X2, X5
	PUNPCKLBW X3, X5
	PUNPCKHBW X3, X2
	MOVO  X4, X6
	PUNPCKLWL X5, X6
	PUNPCKHWL X5, X4
	MOVO  X0, X7
	PUNPCKLWL X2, X7
	PUNPCKHWL X2, X0
	MOVOU X6, 0(DI)
	MOVOU X4, 16(DI)
	MOVOU X7, 32(DI)
	MOVOU X0, 48(DI)
	ADDQ  $16, AX
	ADDQ  $64, DI
	DECQ  CX
	JMP   loop

done:
	RET
