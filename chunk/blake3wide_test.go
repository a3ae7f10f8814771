package chunk

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/zeebo/blake3"
)

// b3TestKey is a fixed BLAKE3 key for the keyed-mode tests.
var b3TestKey = [32]byte{0: 0x4d, 1: 0x65, 31: 0x6f, 17: 0xa5}

func b3KeyWords(k *[32]byte) [8]uint32 {
	var w [8]uint32
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(k[4*i:])
	}
	return w
}

// b3Zeebo is the reference digest: github.com/zeebo/blake3, keyed or not.
func b3Zeebo(t testing.TB, keyed bool, data []byte) [32]byte {
	var out [32]byte
	if !keyed {
		return blake3.Sum256(data)
	}
	h, err := blake3.NewKeyed(b3TestKey[:])
	if err != nil {
		t.Fatal(err)
	}
	_, _ = h.Write(data)
	h.Sum(out[:0])
	return out
}

func b3TestHasher(hash16 b3Hash16, keyed bool) *b3Wide {
	if keyed {
		return newB3Wide(hash16, b3KeyWords(&b3TestKey), b3KeyedHash)
	}
	return newB3Wide(hash16, b3IV, 0)
}

// b3Kernels are the b3Hash16 of this machine: the Go one, and the
// assembly where it runs.
func b3Kernels() map[string]b3Hash16 {
	k := map[string]b3Hash16{"go": b3Hash16Go}
	if haveB3Hash16 {
		k["avx512"] = b3Hash16AVX512
	}
	return k
}

// b3TestLengths are the lengths of the differential tests: every length up
// to 3 KiB and around every multiple of 64 bytes up to 20 KiB (the chunk,
// block and group boundaries), around every 1 KiB up to 300 KiB and around
// the subtree sizes (256 chunks and multiples) up to a few MiB.
func b3TestLengths() []int {
	seen := map[int]bool{}
	var ls []int
	add := func(n int) {
		if n >= 0 && !seen[n] {
			seen[n] = true
			ls = append(ls, n)
		}
	}
	for n := 0; n <= 3<<10; n++ {
		add(n)
	}
	for k := 0; k <= 20<<10; k += 64 {
		add(k - 1)
		add(k)
		add(k + 1)
	}
	for k := 0; k <= 300; k++ {
		add(k<<10 - 1)
		add(k << 10)
		add(k<<10 + 1)
		add(k<<10 + 700)
	}
	for _, c := range []int{256, 257, 511, 512, 513, 767, 768, 1023, 1024, 1025, 1280, 1536, 2047, 2048, 2049, 2304, 3072, 4095, 4096, 4097, 5000} {
		for _, d := range []int{-1025, -1024, -1, 0, 1, 1023, 1024, 16 << 10, 16<<10 + 5} {
			add(c<<10 + d)
		}
	}
	return ls
}

func b3TestData(n int) []byte {
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 18))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data
}

// TestB3WideMatchesZeebo checks the wide hash against zeebo/blake3 for
// every length of b3TestLengths, keyed and not, in one piece and written in
// pieces, with the Go kernel and the assembly.
func TestB3WideMatchesZeebo(t *testing.T) {
	ls := b3TestLengths()
	maxLen := 0
	for _, n := range ls {
		maxLen = max(maxLen, n)
	}
	all := b3TestData(maxLen)
	for name, k := range b3Kernels() {
		for _, keyed := range []bool{false, true} {
			h := b3TestHasher(k, keyed)
			for i, n := range ls {
				// The Go kernel is slow (~50 MB/s): past 20 KiB it takes a
				// few lengths, enough for the tree logic (the subtree
				// stack: 256 KiB and more); the assembly takes them all.
				if name == "go" && n > 20<<10 && i%50 != 0 {
					continue
				}
				data := all[:n]
				want := b3Zeebo(t, keyed, data)
				if got := h.sum(data); got != want {
					t.Fatalf("%s keyed=%v: sum of %d bytes: %x, zeebo %x", name, keyed, n, got, want)
				}
				// Written in pieces of varied sizes (the whole-file digest's use).
				r := rand.New(rand.NewPCG(uint64(n), 7))
				for p := data; len(p) > 0; {
					m := min(len(p), r.IntN(40<<10)+1)
					if r.IntN(4) == 0 {
						m = min(len(p), r.IntN(3)*b3ChunkLen+r.IntN(2))
					}
					h.write(p[:m])
					p = p[m:]
				}
				if got := h.final(); got != want {
					t.Fatalf("%s keyed=%v: %d bytes written in pieces: %x, zeebo %x", name, keyed, n, got, want)
				}
			}
		}
	}
}

// TestB3Hash16 checks the assembly against the Go kernel on chunk and
// parent jobs with varied counters (their high words too), keys and flags.
func TestB3Hash16(t *testing.T) {
	if !haveB3Hash16 {
		t.Skip("no AVX-512 here")
	}
	r := rand.New(rand.NewPCG(1, 2))
	in := b3TestData(32 << 10)
	for it := range 200 {
		var j b3Job
		j.blocks = 1 + r.IntN(16)
		for i := range 16 {
			j.ptr[i] = &in[r.IntN(len(in)-j.blocks*b3BlockLen)]
			j.ctrLo[i], j.ctrHi[i] = r.Uint32(), r.Uint32()
		}
		for i := range j.key {
			j.key[i] = r.Uint32()
		}
		j.flags, j.first, j.last = r.Uint32()&0x7f, r.Uint32()&0x7f, r.Uint32()&0x7f
		var got, want [16][32]byte
		b3Hash16AVX512(&j, &got)
		b3Hash16Go(&j, &want)
		if got != want {
			for i := range 16 {
				if got[i] != want[i] {
					t.Fatalf("job %d (%d blocks): lane %d: %x, Go %x", it, j.blocks, i, got[i], want[i])
				}
			}
		}
	}
}

// TestB3JobLayout pins the b3Job offsets the assembly reads.
func TestB3JobLayout(t *testing.T) {
	var j b3Job
	got := []uintptr{unsafe.Offsetof(j.ctrLo), unsafe.Offsetof(j.ctrHi), unsafe.Offsetof(j.key),
		unsafe.Offsetof(j.blocks), unsafe.Offsetof(j.flags), unsafe.Offsetof(j.first), unsafe.Offsetof(j.last)}
	want := []uintptr{128, 192, 256, 288, 296, 300, 304}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b3Job offsets %v, the assembly's %v", got, want)
	}
}

// TestB3CompressSpec checks b3Compress, through the hasher, against the
// official test vector input (bytes i mod 251) for a few lengths whose
// digests the BLAKE3 repository publishes (test_vectors.json).
func TestB3CompressSpec(t *testing.T) {
	vec := map[int]string{
		0:    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
		1:    "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
		1024: "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
		1025: "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
		2048: "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a",
	}
	for n, hex := range vec {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i % 251)
		}
		got := newB3Wide(b3Hash16Go, b3IV, 0).sum(data)
		if fmt.Sprintf("%x", got) != hex {
			t.Errorf("%d bytes: %x, test vector %s", n, got, hex)
		}
	}
}

func BenchmarkB3Wide(b *testing.B) {
	for _, n := range []int{16 << 10, 64 << 10, 1 << 20, 4 << 20} {
		data := b3TestData(n)
		name := fmt.Sprintf("%dKiB", n>>10)
		b.Run("zeebo/"+name, func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				blake3.Sum256(data)
			}
		})
		b.Run("zeebo-keyed/"+name, func(b *testing.B) {
			h, _ := blake3.NewKeyed(b3TestKey[:])
			var out [32]byte
			b.SetBytes(int64(n))
			for b.Loop() {
				h.Reset()
				_, _ = h.Write(data)
				h.Sum(out[:0])
			}
		})
		if !haveB3Hash16 {
			continue
		}
		b.Run("avx512/"+name, func(b *testing.B) {
			h := newB3Wide(b3Hash16AVX512, b3IV, 0)
			b.SetBytes(int64(n))
			for b.Loop() {
				h.sum(data)
			}
		})
		b.Run("avx512-keyed/"+name, func(b *testing.B) {
			h := newB3Wide(b3Hash16AVX512, b3KeyWords(&b3TestKey), b3KeyedHash)
			b.SetBytes(int64(n))
			for b.Loop() {
				h.sum(data)
			}
		})
	}
}

// b3BenchLengths are BenchmarkB3WideAB's input lengths: -b3len=a,b,c (KiB)
// or 16 KiB, 64 KiB, 1 MiB, 4 MiB.
func b3BenchLengths() []int {
	if *b3Len == "" {
		return []int{16 << 10, 64 << 10, 1 << 20, 4 << 20}
	}
	var ls []int
	for _, f := range strings.Split(*b3Len, ",") {
		k, err := strconv.Atoi(f)
		if err != nil {
			panic("-b3len: " + err.Error())
		}
		ls = append(ls, k<<10)
	}
	return ls
}

var b3Len = flag.String("b3len", "", "BenchmarkB3WideAB's input lengths in KiB, comma-separated")

// BenchmarkB3WideAB times zeebo/blake3 and the wide hash of the same input
// alternately (a shared, noisy machine: one slow stretch hits both) and
// reports the fastest and the median of each, in MB/s, and the ratio of the
// medians (wide / zeebo): run with -benchtime=Nx, N rounds.
func BenchmarkB3WideAB(b *testing.B) {
	if !haveB3Hash16 {
		b.Skip("no AVX-512 here")
	}
	for _, n := range b3BenchLengths() {
		for _, keyed := range []bool{false, true} {
			data := b3TestData(n)
			b.Run(fmt.Sprintf("%dKiB/keyed=%v", n>>10, keyed), func(b *testing.B) {
				h := b3TestHasher(b3Hash16AVX512, keyed)
				var zt, wt []float64
				for b.Loop() {
					t0 := time.Now()
					b3Zeebo(b, keyed, data)
					t1 := time.Now()
					h.sum(data)
					t2 := time.Now()
					zt, wt = append(zt, float64(t1.Sub(t0))), append(wt, float64(t2.Sub(t1)))
				}
				sort.Float64s(zt)
				sort.Float64s(wt)
				mbs := func(ns float64) float64 { return float64(n) / ns * 1e3 }
				b.ReportMetric(mbs(zt[0]), "zeebo-best-MB/s")
				b.ReportMetric(mbs(zt[len(zt)/2]), "zeebo-med-MB/s")
				b.ReportMetric(mbs(wt[0]), "wide-best-MB/s")
				b.ReportMetric(mbs(wt[len(wt)/2]), "wide-med-MB/s")
				b.ReportMetric(zt[len(zt)/2]/wt[len(wt)/2], "speedup-med")
			})
		}
	}
}
