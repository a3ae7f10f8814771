//go:build !amd64

package walreplay

// haveB3Compress16 is false: there is no b3Compress16AVX512 here, and
// b3Many hashes its messages one by one.
const haveB3Compress16 = false

// b3Compress16AVX512 is never called here (haveB3Compress16).
func b3Compress16AVX512(l *b3Lanes) { panic("walreplay: b3Compress16AVX512 without AVX-512") }
