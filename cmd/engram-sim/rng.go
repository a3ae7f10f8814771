package main

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// newRNG returns a fast deterministic generator (PCG) for one stream of work,
// named by labels. Each independent task (a space's WAL, its warm file, one
// cold segment, ...) draws from its own stream, so tasks can run on any
// number of goroutines in any order and still produce the same bytes.
func newRNG(seed uint64, labels ...string) *rand.Rand {
	h := fnv.New64a()
	for _, l := range labels {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// fillNormal fills v with standard-normal float32s: embeddings of real
// models look like this and, importantly for benchmarks, compress as badly.
func fillNormal(r *rand.Rand, v []float32) {
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
}

// appendNormalBytes appends n standard-normal float32s, little-endian.
func appendNormalBytes(dst []byte, r *rand.Rand, n int) []byte {
	for range n {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(r.NormFloat64())))
	}
	return dst
}

// confidence draws a plausible confidence in [0.05, 1): most memories are
// fairly sure, a few are not.
func confidence(r *rand.Rand) float32 {
	c := 1 - 0.95*r.Float64()*r.Float64()
	if c >= 1 {
		c = 0.999
	}
	return float32(c)
}

const hexDigits = "0123456789abcdef"

// newMemoryID returns "mem-" plus 16 random hex digits.
func newMemoryID(r *rand.Rand) string {
	var b [20]byte
	copy(b[:], "mem-")
	x := r.Uint64()
	for i := 19; i >= 4; i-- {
		b[i] = hexDigits[x&15]
		x >>= 4
	}
	return string(b[:])
}
