#include "textflag.h"

// Gathers byte k of each of four 4-byte words into dword k.
DATA shuffle4Mask<>+0(SB)/8, $0x0d0905010c080400
DATA shuffle4Mask<>+8(SB)/8, $0x0f0b07030e0a0602
GLOBL shuffle4Mask<>(SB), RODATA|NOPTR, $16

// func shuffle4Blocks(d0, d1, d2, d3, src *byte, blocks int)
// Per block, 64 bytes (16 words) of src: PSHUFB gathers, in each 16 bytes,
// byte k of its four words into dword k; a 4x4 dword transpose
// (PUNPCKLLQ/PUNPCKHLQ, then PUNPCKLQDQ/PUNPCKHQDQ) then puts byte k of all
// sixteen words into one register, stored to plane k.
TEXT ·shuffle4Blocks(SB), NOSPLIT, $0-48
	MOVQ d0+0(FP), DI
	MOVQ d1+8(FP), R8
	MOVQ d2+16(FP), R9
	MOVQ d3+24(FP), R10
	MOVQ src+32(FP), SI
	MOVQ blocks+40(FP), CX
	MOVOU shuffle4Mask<>(SB), X15
	XORQ AX, AX

loop:
	TESTQ CX, CX
	JZ    done
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	PSHUFB X15, X0
	PSHUFB X15, X1
	PSHUFB X15, X2
	PSHUFB X15, X3
	MOVO  X0, X4
	PUNPCKLLQ X1, X4
	PUNPCKHLQ X1, X0
	MOVO  X2, X5
	PUNPCKLLQ X3, X5
	PUNPCKHLQ X3, X2
	MOVO  X4, X6
	PUNPCKLQDQ X5, X6
	PUNPCKHQDQ X5, X4
	MOVO  X0, X7
	PUNPCKLQDQ X2, X7
	PUNPCKHQDQ X2, X0
	MOVOU X6, (DI)(AX*1)
	MOVOU X4, (R8)(AX*1)
	MOVOU X7, (R9)(AX*1)
	MOVOU X0, (R10)(AX*1)
	ADDQ  $16, AX
	ADDQ  $64, SI
	DECQ  CX
	JMP   loop

done:
	RET
