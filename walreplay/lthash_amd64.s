#include "textflag.h"

// Adds 1 to byte 15 of a 16-byte counter block (the low byte of its
// big-endian 128-bit counter: the expansion's 128 blocks never carry out of
// it).
DATA ltCtrOne<>+0(SB)/8, $0
DATA ltCtrOne<>+8(SB)/8, $0x0100000000000000
GLOBL ltCtrOne<>(SB), RODATA|NOPTR, $16

// KEY256_ODD derives the next even round key in X1 from X1 and
// AESKEYGENASSIST's result in X2 (Intel's AES-NI white paper,
// KEY_256_ASSIST_1); X4 is scratch.
#define KEY256_ODD \
	PSHUFD $0xff, X2, X2 \
	MOVO   X1, X4        \
	PSLLO  $4, X4        \
	PXOR   X4, X1        \
	PSLLO  $4, X4        \
	PXOR   X4, X1        \
	PSLLO  $4, X4        \
	PXOR   X4, X1        \
	PXOR   X2, X1

// KEY256_EVEN derives the next odd round key in X3 from X3 and X1
// (KEY_256_ASSIST_2); X2 and X4 are scratch.
#define KEY256_EVEN \
	AESKEYGENASSIST $0x00, X1, X4 \
	PSHUFD $0xaa, X4, X2 \
	MOVO   X3, X4        \
	PSLLO  $4, X4        \
	PXOR   X4, X3        \
	PSLLO  $4, X4        \
	PXOR   X4, X3        \
	PSLLO  $4, X4        \
	PXOR   X4, X3        \
	PXOR   X2, X3

// ROUND8 applies the round key in X8 to the eight blocks X0..X7.
#define ROUND8(op) \
	op X8, X0 \
	op X8, X1 \
	op X8, X2 \
	op X8, X3 \
	op X8, X4 \
	op X8, X5 \
	op X8, X6 \
	op X8, X7

// LANE adds (op PADDW) or subtracts (op PSUBW) the keystream block x to
// the 16 bytes of the accumulator at off(DI), lane-wise mod 2^16.
#define LANE(off, x, op) \
	MOVOU off(DI), X8 \
	op    x, X8       \
	MOVOU X8, off(DI)

// LANES8 applies the keystream blocks X0..X7 to the accumulator's 128 bytes
// at DI.
#define LANES8(op) \
	LANE(0, X0, op)   \
	LANE(16, X1, op)  \
	LANE(32, X2, op)  \
	LANE(48, X3, op)  \
	LANE(64, X4, op)  \
	LANE(80, X5, op)  \
	LANE(96, X6, op)  \
	LANE(112, X7, op)

// func ltAccumAES(acc *ltHash, key *[32]byte, sub bool)
//
// The element vector of the key (AES-256-CTR keystream of 2048 bytes, the
// counter block starting at 16 zero bytes, lanes little-endian: on amd64
// the byte image of an ltHash is its memory) added to, or with sub
// subtracted from, acc lane-wise mod 2^16 (PADDW/PSUBW: eight 16-bit lanes
// per block). The 15 round keys are expanded into the frame; eight
// counter blocks are encrypted at once.
TEXT ·ltAccumAES(SB), NOSPLIT, $240-17
	MOVQ acc+0(FP), DI
	MOVQ key+8(FP), SI
	MOVB sub+16(FP), DX

	// Key expansion: round keys 0..14 at 0(SP)..224(SP).
	MOVOU 0(SI), X1
	MOVOU 16(SI), X3
	MOVOU X1, 0(SP)
	MOVOU X3, 16(SP)
	AESKEYGENASSIST $0x01, X3, X2
	KEY256_ODD
	MOVOU X1, 32(SP)
	KEY256_EVEN
	MOVOU X3, 48(SP)
	AESKEYGENASSIST $0x02, X3, X2
	KEY256_ODD
	MOVOU X1, 64(SP)
	KEY256_EVEN
	MOVOU X3, 80(SP)
	AESKEYGENASSIST $0x04, X3, X2
	KEY256_ODD
	MOVOU X1, 96(SP)
	KEY256_EVEN
	MOVOU X3, 112(SP)
	AESKEYGENASSIST $0x08, X3, X2
	KEY256_ODD
	MOVOU X1, 128(SP)
	KEY256_EVEN
	MOVOU X3, 144(SP)
	AESKEYGENASSIST $0x10, X3, X2
	KEY256_ODD
	MOVOU X1, 160(SP)
	KEY256_EVEN
	MOVOU X3, 176(SP)
	AESKEYGENASSIST $0x20, X3, X2
	KEY256_ODD
	MOVOU X1, 192(SP)
	KEY256_EVEN
	MOVOU X3, 208(SP)
	AESKEYGENASSIST $0x40, X3, X2
	KEY256_ODD
	MOVOU X1, 224(SP)

	MOVOU ltCtrOne<>(SB), X10
	PXOR  X9, X9 // the counter block of the next block: 0
	MOVQ  $16, CX // 16 x 8 blocks = 2048 bytes

loop:
	MOVOU 0(SP), X8
	MOVO  X9, X0
	PADDQ X10, X9
	MOVO  X9, X1
	PADDQ X10, X9
	MOVO  X9, X2
	PADDQ X10, X9
	MOVO  X9, X3
	PADDQ X10, X9
	MOVO  X9, X4
	PADDQ X10, X9
	MOVO  X9, X5
	PADDQ X10, X9
	MOVO  X9, X6
	PADDQ X10, X9
	MOVO  X9, X7
	PADDQ X10, X9
	ROUND8(PXOR)
	MOVOU 16(SP), X8
	ROUND8(AESENC)
	MOVOU 32(SP), X8
	ROUND8(AESENC)
	MOVOU 48(SP), X8
	ROUND8(AESENC)
	MOVOU 64(SP), X8
	ROUND8(AESENC)
	MOVOU 80(SP), X8
	ROUND8(AESENC)
	MOVOU 96(SP), X8
	ROUND8(AESENC)
	MOVOU 112(SP), X8
	ROUND8(AESENC)
	MOVOU 128(SP), X8
	ROUND8(AESENC)
	MOVOU 144(SP), X8
	ROUND8(AESENC)
	MOVOU 160(SP), X8
	ROUND8(AESENC)
	MOVOU 176(SP), X8
	ROUND8(AESENC)
	MOVOU 192(SP), X8
	ROUND8(AESENC)
	MOVOU 208(SP), X8
	ROUND8(AESENC)
	MOVOU 224(SP), X8
	ROUND8(AESENCLAST)
	TESTB DL, DL
	JNZ   subtract
	LANES8(PADDW)
	JMP   next

subtract:
	LANES8(PSUBW)

next:
	ADDQ $128, DI
	DECQ CX
	JNZ  loop
	RET
