package chunk

import "golang.org/x/sys/cpu"

// haveB3Hash16 says b3Hash16AVX512 runs here: AVX-512F (the registers,
// VPRORD, the 128-bit lane shuffles), with the OS saving their state.
var haveB3Hash16 = cpu.X86.HasAVX512F

// b3Hash16AVX512 runs the sixteen lanes of j with AVX-512
// (blake3wide_amd64.s). Bit for bit b3Hash16Go (TestB3Hash16).
//
//go:noescape
func b3Hash16AVX512(j *b3Job, out *[16][32]byte)
