package chunk

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"
)

// b3GuardedTail maps n bytes ending exactly at a PROT_NONE page: any read
// past the end of the returned slice faults.
func b3GuardedTail(t *testing.T, n int) []byte {
	t.Helper()
	ps := unix.Getpagesize()
	pages := (n+ps-1)/ps + 1
	m, err := unix.Mmap(-1, 0, (pages+1)*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(m) })
	if err := unix.Mprotect(m[pages*ps:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return m[pages*ps-n : pages*ps]
}

// TestB3WideGuardPage hashes inputs that end at a PROT_NONE page (every
// length near the chunk, group and subtree boundaries, and odd starting
// alignments) with Sum256, Key.Sum and Hasher, and checks them against
// zeebo/blake3: a kernel reading past the input faults here.
func TestB3WideGuardPage(t *testing.T) {
	key := DeriveKey([32]byte{1, 2, 3}, "guard")
	zk, err := blake3.NewKeyed(key.k[:])
	if err != nil {
		t.Fatal(err)
	}
	var lens []int
	for n := 0; n <= 20<<10; n += 61 {
		lens = append(lens, n)
	}
	for _, c := range []int{1, 2, 15, 16, 17, 31, 32, 33, 255, 256, 257, 512, 1024} {
		for _, d := range []int{-64, -1, 0, 1, 63, 64, 1023} {
			if n := c<<10 + d; n >= 0 {
				lens = append(lens, n)
			}
		}
	}
	src := b3TestData(1<<20 + 2048)
	for _, n := range lens {
		buf := b3GuardedTail(t, n)
		copy(buf, src[:n])
		// Odd starts: the input's first byte at each alignment, its last
		// byte always at the guard.
		for _, off := range []int{0, 1, 7, 63} {
			if off > n {
				continue
			}
			data := buf[off:]
			want := blake3.Sum256(src[off:n])
			if got := Sum256(data); got != want {
				t.Fatalf("Sum256 of %d bytes (start +%d): %x, zeebo %x", len(data), off, got, want)
			}
			zk.Reset()
			_, _ = zk.Write(src[off:n])
			var wantK ID
			zk.Sum(wantK[:0])
			if got := key.Sum(data); got != wantK {
				t.Fatalf("Key.Sum of %d bytes (start +%d): %x, zeebo %x", len(data), off, got, wantK)
			}
			var h Hasher
			for p := data; len(p) > 0; {
				m := min(len(p), 1+(len(p)*7)%(17<<10))
				_, _ = h.Write(p[:m])
				p = p[m:]
			}
			if got := h.Sum256(); got != want {
				t.Fatalf("Hasher of %d bytes (start +%d): %x, zeebo %x", len(data), off, got, want)
			}
		}
	}
}

// TestB3WideHighCounter hashes with the chunk counter started past 2^32
// chunks (a 4 TiB stream, the counter's high word in use): the wide
// hasher's chunk values must match b3Compress's chain for every lane.
func TestB3WideHighCounter(t *testing.T) {
	for name, k := range b3Kernels() {
		h := b3TestHasher(k, false)
		data := b3TestData(16 << 10)
		for _, base := range []uint64{1<<32 - 3, 1 << 32, 1<<40 + 5, 1<<54 - 16} {
			h.reset()
			h.chunks = base
			h.group(data, 16, false)
			for i := range 16 {
				want := h.chunk(data[i*b3ChunkLen:(i+1)*b3ChunkLen], base+uint64(i), 0)
				if h.cvs[i] != want {
					t.Fatalf("%s: chunk %d (counter %#x): %x, b3Compress %x", name, i, base+uint64(i), h.cvs[i], want)
				}
			}
		}
	}
}

// TestB3WideConcurrent runs Sum256, Key.Sum and Hashers from many
// goroutines at once (the pools shared): every digest must be zeebo's.
func TestB3WideConcurrent(t *testing.T) {
	key := DeriveKey([32]byte{9}, "conc")
	zk, _ := blake3.NewKeyed(key.k[:])
	src := b3TestData(300 << 10)
	type want struct{ plain, keyed [32]byte }
	lens := []int{0, 1, 1024, 2048, 5000, 16 << 10, 16<<10 + 1, 100 << 10, 256<<10 + 3, 300 << 10}
	ws := make([]want, len(lens))
	for i, n := range lens {
		ws[i].plain = blake3.Sum256(src[:n])
		zk.Reset()
		_, _ = zk.Write(src[:n])
		zk.Sum(ws[i].keyed[:0])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for range 200 {
				i := r.IntN(len(lens))
				d := src[:lens[i]]
				if got := Sum256(d); got != ws[i].plain {
					errs <- fmt.Errorf("Sum256 of %d bytes: %x", len(d), got)
					return
				}
				if got := key.Sum(d); got != ws[i].keyed {
					errs <- fmt.Errorf("Key.Sum of %d bytes: %x", len(d), got)
					return
				}
				var h Hasher
				for p := d; len(p) > 0; {
					m := min(len(p), 1+r.IntN(20<<10))
					_, _ = h.Write(p[:m])
					p = p[m:]
				}
				if got := h.Sum256(); got != ws[i].plain {
					errs <- fmt.Errorf("Hasher of %d bytes: %x", len(d), got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// FuzzB3WideExported: the exported Sum256, Key.Sum and Hasher; any input, keyed or not, in one piece or in pieces cut at
// the fuzzer's sizes, hashes as zeebo/blake3 does.
func FuzzB3WideExported(f *testing.F) {
	f.Add(make([]byte, 2048), uint16(1000), true)
	f.Add(make([]byte, 16<<10+1), uint16(17), false)
	f.Add(b3TestData(33<<10), uint16(1024), true)
	key := DeriveKey([32]byte{7}, "fuzz")
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, keyed bool) {
		if keyed {
			zk, _ := blake3.NewKeyed(key.k[:])
			_, _ = zk.Write(data)
			var want ID
			zk.Sum(want[:0])
			if got := key.Sum(data); got != want {
				t.Fatalf("Key.Sum of %d bytes: %x, zeebo %x", len(data), got, want)
			}
			return
		}
		want := blake3.Sum256(data)
		if got := Sum256(data); got != want {
			t.Fatalf("Sum256 of %d bytes: %x, zeebo %x", len(data), got, want)
		}
		var h Hasher
		c := int(cut)%(20<<10) + 1
		for p := data; len(p) > 0; {
			m := min(len(p), c)
			_, _ = h.Write(p[:m])
			p = p[m:]
		}
		if got := h.Sum256(); got != want {
			t.Fatalf("Hasher of %d bytes in pieces of %d: %x, zeebo %x", len(data), c, got, want)
		}
	})
}
