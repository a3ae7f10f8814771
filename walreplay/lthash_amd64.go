package walreplay

// haveLtAccumAES says ltAccumAES exists for this architecture; it runs
// where the CPU has AES-NI (cpu.X86.HasAES).
const haveLtAccumAES = true

// ltAccumAES (cpu.X86.HasAES only) adds (sub: subtracts) the element vector whose AES-256 key is
// key to acc, with AES-NI (lthash_amd64.s): the key expanded on the stack
// and the 128 counter blocks encrypted eight at a time straight into acc's
// lanes, where crypto/aes's cipher and CTR cost three heap allocations per
// record and a pass over a 2 KiB buffer. Bit for bit the vector of the spec
// (TestLtHashAccumAESMatchesCTR checks it against crypto/aes).
//
//go:noescape
func ltAccumAES(acc *ltHash, key *[32]byte, sub bool)
