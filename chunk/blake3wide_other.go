//go:build !amd64

package chunk

// haveB3Hash16 is false: there is no b3Hash16AVX512 here, and large
// inputs are hashed by github.com/zeebo/blake3 as short ones.
const haveB3Hash16 = false

// b3Hash16AVX512 is never called here (haveB3Hash16).
func b3Hash16AVX512(j *b3Job, out *[16][32]byte) { panic("chunk: b3Hash16AVX512 without AVX-512") }
