//go:build !amd64

package walreplay

// ltAccumAES is never called here: cpu.X86.HasAES is false, and elements
// are expanded with crypto/aes (ltExpander.vector).
func ltAccumAES(acc *ltHash, key *[32]byte, sub bool) { panic("walreplay: ltAccumAES without AES-NI") }
