package chunk

import (
	"sync"

	"github.com/zeebo/blake3"
)

// b3WideMin is the shortest input hashed with the wide kernel: from two
// chunks on it is at least twice as fast as github.com/zeebo/blake3
// (whose inputs of up to eight chunks go one compression at a time;
// BenchmarkB3WideAB: 2 KiB 0.98 against 0.49 GB/s, 1 MiB 7.5 against 3.3);
// a single chunk is a chain of compressions either way.
const b3WideMin = 2 * b3ChunkLen

// b3WidePool recycles unkeyed wide hashers (27 KiB each).
var b3WidePool = sync.Pool{New: func() any { return newB3Wide(b3Hash16AVX512, b3IV, 0) }}

// Sum256 returns the BLAKE3-256 (hash mode) of data: with AVX-512 sixteen
// chunks at a time for inputs of two chunks or more where it runs, else
// through a pooled blake3.Hasher (blake3.Sum256 keeps its 8 KiB hasher on
// the stack, which a small file's goroutine had to grow). The repository
// names packs and files with it.
func Sum256(data []byte) [32]byte {
	if !haveB3Hash16 || len(data) < b3WideMin {
		z := zeeboPool.Get().(*blake3.Hasher)
		z.Reset()
		_, _ = z.Write(data)
		var sum [32]byte
		z.Sum(sum[:0])
		zeeboPool.Put(z)
		return sum
	}
	h := b3WidePool.Get().(*b3Wide)
	sum := h.sum(data)
	b3WidePool.Put(h)
	return sum
}

// Hasher is a BLAKE3-256 (hash mode) of a stream written in pieces, as
// Sum256: Write the stream, then Sum256 returns its digest and resets the
// Hasher. The zero Hasher is ready for use. It takes its state (a wide
// hasher, or a blake3.Hasher without AVX-512) from a pool at the first
// Write and gives it back at Sum256, so a Hasher waiting for its first
// byte, or done, holds none. Not safe for concurrent use.
type Hasher struct {
	w *b3Wide
	z *blake3.Hasher
}

// zeeboPool recycles the unkeyed blake3.Hashers of Sum256's short inputs
// and of Hasher without AVX-512.
var zeeboPool = sync.Pool{New: func() any { return blake3.New() }}

// Write adds p to the stream. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	switch {
	case h.w != nil:
		h.w.write(p)
	case h.z != nil:
		_, _ = h.z.Write(p)
	case haveB3Hash16:
		h.w = b3WidePool.Get().(*b3Wide)
		h.w.reset()
		h.w.write(p)
	default:
		h.z = zeeboPool.Get().(*blake3.Hasher)
		h.z.Reset()
		_, _ = h.z.Write(p)
	}
	return len(p), nil
}

// Sum256 returns the digest of the stream written so far and resets h.
func (h *Hasher) Sum256() [32]byte {
	var sum [32]byte
	switch {
	case h.w != nil:
		if w := h.w; w.chunks == 0 && w.nbuf < b3WideMin {
			sum = blake3.Sum256(w.buf[:w.nbuf]) // the stream is in buf, short
		} else {
			sum = w.final()
		}
		h.Reset()
	case h.z != nil:
		h.z.Sum(sum[:0])
		h.Reset()
	default:
		sum = blake3.Sum256(nil)
	}
	return sum
}

// Reset forgets the stream and gives the state back to its pool.
func (h *Hasher) Reset() {
	if h.w != nil {
		h.w.reset()
		b3WidePool.Put(h.w)
		h.w = nil
	}
	if h.z != nil {
		zeeboPool.Put(h.z)
		h.z = nil
	}
}
