//go:build !amd64

package walreplay

// haveLtAccumAES is false: there is no ltAccumAES here, whatever the CPU
// (cpu.X86.HasAES is set on 386 too), and elements are expanded with
// crypto/aes (ltExpander.expandKey).
const haveLtAccumAES = false

// ltAccumAES is never called here (haveLtAccumAES).
func ltAccumAES(acc *ltHash, key *[32]byte, sub bool) { panic("walreplay: ltAccumAES without AES-NI") }
