//go:build amd64

#include "textflag.h"

// Sixteen BLAKE3 compressions side by side with AVX-512 (one message block
// per 32-bit lane of a ZMM register): the state words v0..v15 in Z0..Z15,
// the message words m0..m15 in Z16..Z31 (no register spills, no
// temporaries: VPRORD rotates). The rounds below apply the message schedule
// of the BLAKE3 spec (the permutation 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8
// after each round), written out per round.

// G is BLAKE3's quarter-round on four state registers and two message
// registers.
#define G(a, b, c, d, mx, my) \
	VPADDD b, a, a \
	VPADDD mx, a, a \
	VPXORD a, d, d \
	VPRORD $16, d, d \
	VPADDD d, c, c \
	VPXORD c, b, b \
	VPRORD $12, b, b \
	VPADDD b, a, a \
	VPADDD my, a, a \
	VPXORD a, d, d \
	VPRORD $8, d, d \
	VPADDD d, c, c \
	VPXORD c, b, b \
	VPRORD $7, b, b

// func b3Compress16AVX512(l *b3Lanes)
TEXT ·b3Compress16AVX512(SB), NOSPLIT, $0-8
	MOVQ l+0(FP), AX
	LEAQ 512(AX), BX // l.m
	VMOVDQU32 0(BX), Z16
	VMOVDQU32 64(BX), Z17
	VMOVDQU32 128(BX), Z18
	VMOVDQU32 192(BX), Z19
	VMOVDQU32 256(BX), Z20
	VMOVDQU32 320(BX), Z21
	VMOVDQU32 384(BX), Z22
	VMOVDQU32 448(BX), Z23
	VMOVDQU32 512(BX), Z24
	VMOVDQU32 576(BX), Z25
	VMOVDQU32 640(BX), Z26
	VMOVDQU32 704(BX), Z27
	VMOVDQU32 768(BX), Z28
	VMOVDQU32 832(BX), Z29
	VMOVDQU32 896(BX), Z30
	VMOVDQU32 960(BX), Z31
	VMOVDQU32 0(AX), Z0
	VMOVDQU32 64(AX), Z1
	VMOVDQU32 128(AX), Z2
	VMOVDQU32 192(AX), Z3
	VMOVDQU32 256(AX), Z4
	VMOVDQU32 320(AX), Z5
	VMOVDQU32 384(AX), Z6
	VMOVDQU32 448(AX), Z7
	MOVL $0x6A09E667, DI
	VPBROADCASTD DI, Z8
	MOVL $0xBB67AE85, DI
	VPBROADCASTD DI, Z9
	MOVL $0x3C6EF372, DI
	VPBROADCASTD DI, Z10
	MOVL $0xA54FF53A, DI
	VPBROADCASTD DI, Z11
	VMOVDQU32 1536(AX), Z12 // l.ctr
	VPXORD Z13, Z13, Z13    // counter high words: zero
	VMOVDQU32 1600(AX), Z14 // l.blen
	VMOVDQU32 1664(AX), Z15 // l.flags
	// round 1: message words 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15
	G(Z0, Z4, Z8, Z12, Z16, Z17)
	G(Z1, Z5, Z9, Z13, Z18, Z19)
	G(Z2, Z6, Z10, Z14, Z20, Z21)
	G(Z3, Z7, Z11, Z15, Z22, Z23)
	G(Z0, Z5, Z10, Z15, Z24, Z25)
	G(Z1, Z6, Z11, Z12, Z26, Z27)
	G(Z2, Z7, Z8, Z13, Z28, Z29)
	G(Z3, Z4, Z9, Z14, Z30, Z31)
	// round 2: message words 2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8
	G(Z0, Z4, Z8, Z12, Z18, Z22)
	G(Z1, Z5, Z9, Z13, Z19, Z26)
	G(Z2, Z6, Z10, Z14, Z23, Z16)
	G(Z3, Z7, Z11, Z15, Z20, Z29)
	G(Z0, Z5, Z10, Z15, Z17, Z27)
	G(Z1, Z6, Z11, Z12, Z28, Z21)
	G(Z2, Z7, Z8, Z13, Z25, Z30)
	G(Z3, Z4, Z9, Z14, Z31, Z24)
	// round 3: message words 3 4 10 12 13 2 7 14 6 5 9 0 11 15 8 1
	G(Z0, Z4, Z8, Z12, Z19, Z20)
	G(Z1, Z5, Z9, Z13, Z26, Z28)
	G(Z2, Z6, Z10, Z14, Z29, Z18)
	G(Z3, Z7, Z11, Z15, Z23, Z30)
	G(Z0, Z5, Z10, Z15, Z22, Z21)
	G(Z1, Z6, Z11, Z12, Z25, Z16)
	G(Z2, Z7, Z8, Z13, Z27, Z31)
	G(Z3, Z4, Z9, Z14, Z24, Z17)
	// round 4: message words 10 7 12 9 14 3 13 15 4 0 11 2 5 8 1 6
	G(Z0, Z4, Z8, Z12, Z26, Z23)
	G(Z1, Z5, Z9, Z13, Z28, Z25)
	G(Z2, Z6, Z10, Z14, Z30, Z19)
	G(Z3, Z7, Z11, Z15, Z29, Z31)
	G(Z0, Z5, Z10, Z15, Z20, Z16)
	G(Z1, Z6, Z11, Z12, Z27, Z18)
	G(Z2, Z7, Z8, Z13, Z21, Z24)
	G(Z3, Z4, Z9, Z14, Z17, Z22)
	// round 5: message words 12 13 9 11 15 10 14 8 7 2 5 3 0 1 6 4
	G(Z0, Z4, Z8, Z12, Z28, Z29)
	G(Z1, Z5, Z9, Z13, Z25, Z27)
	G(Z2, Z6, Z10, Z14, Z31, Z26)
	G(Z3, Z7, Z11, Z15, Z30, Z24)
	G(Z0, Z5, Z10, Z15, Z23, Z18)
	G(Z1, Z6, Z11, Z12, Z21, Z19)
	G(Z2, Z7, Z8, Z13, Z16, Z17)
	G(Z3, Z4, Z9, Z14, Z22, Z20)
	// round 6: message words 9 14 11 5 8 12 15 1 13 3 0 10 2 6 4 7
	G(Z0, Z4, Z8, Z12, Z25, Z30)
	G(Z1, Z5, Z9, Z13, Z27, Z21)
	G(Z2, Z6, Z10, Z14, Z24, Z28)
	G(Z3, Z7, Z11, Z15, Z31, Z17)
	G(Z0, Z5, Z10, Z15, Z29, Z19)
	G(Z1, Z6, Z11, Z12, Z16, Z26)
	G(Z2, Z7, Z8, Z13, Z18, Z22)
	G(Z3, Z4, Z9, Z14, Z20, Z23)
	// round 7: message words 11 15 5 0 1 9 8 6 14 10 2 12 3 4 7 13
	G(Z0, Z4, Z8, Z12, Z27, Z31)
	G(Z1, Z5, Z9, Z13, Z21, Z16)
	G(Z2, Z6, Z10, Z14, Z17, Z25)
	G(Z3, Z7, Z11, Z15, Z24, Z22)
	G(Z0, Z5, Z10, Z15, Z30, Z26)
	G(Z1, Z6, Z11, Z12, Z18, Z28)
	G(Z2, Z7, Z8, Z13, Z19, Z20)
	G(Z3, Z4, Z9, Z14, Z23, Z29)
	// The chaining values: v[i] ^ v[i+8], back into l.cv.
	VPXORD Z8, Z0, Z0
	VMOVDQU32 Z0, 0(AX)
	VPXORD Z9, Z1, Z1
	VMOVDQU32 Z1, 64(AX)
	VPXORD Z10, Z2, Z2
	VMOVDQU32 Z2, 128(AX)
	VPXORD Z11, Z3, Z3
	VMOVDQU32 Z3, 192(AX)
	VPXORD Z12, Z4, Z4
	VMOVDQU32 Z4, 256(AX)
	VPXORD Z13, Z5, Z5
	VMOVDQU32 Z5, 320(AX)
	VPXORD Z14, Z6, Z6
	VMOVDQU32 Z6, 384(AX)
	VPXORD Z15, Z7, Z7
	VMOVDQU32 Z7, 448(AX)
	VZEROUPPER
	RET
