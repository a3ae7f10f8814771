package walreplay

import "golang.org/x/sys/cpu"

// haveB3Compress16 says b3Compress16AVX512 runs here: AVX-512F (the
// registers and VPRORD), with the OS saving their state.
var haveB3Compress16 = cpu.X86.HasAVX512F

// b3Compress16AVX512 compresses the sixteen lanes of l with AVX-512
// (blake3many_amd64.s). Bit for bit b3Compress16Go (TestB3Compress16).
//
//go:noescape
func b3Compress16AVX512(l *b3Lanes)
