package fusefs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// readyChunkMem returns a prefaulted chunkMem of size bytes.
func readyChunkMem(t *testing.T, size int64) *chunkMem {
	t.Helper()
	m := newChunkMem(size)
	if m == nil {
		t.Fatalf("newChunkMem(%d) = nil", size)
	}
	m.prefault(nil)
	return m
}

// The buddy allocator hands out disjoint blocks of the right size, refuses
// what does not fit, ignores memory that is not its own, and once every
// block is back holds the whole slab as one free block again.
func TestChunkMemAllocFree(t *testing.T) {
	const size = 4 << 20
	m := readyChunkMem(t, size)
	if free, used := m.freeBytes(); free != size || used != 0 || len(m.avail[m.top]) != 1 {
		t.Fatalf("after prefault: %d free, %d used, want the whole slab in one block", free, used)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	type block struct {
		b    []byte
		fill byte
	}
	var live []block
	for round := range 2000 {
		if len(live) > 0 && (rng.IntN(2) == 0 || round%97 == 0) {
			k := rng.IntN(len(live))
			bl := live[k]
			for _, i := range probes(len(bl.b)) { // nobody else wrote into the block
				if bl.b[i] != bl.fill {
					t.Fatalf("round %d: a block of %d bytes was overwritten at %d while handed out", round, len(bl.b), i)
				}
			}
			m.free(bl.b)
			live = append(live[:k], live[k+1:]...)
			continue
		}
		n := 1 + rng.IntN(1<<20)
		b := m.alloc(n)
		if b == nil {
			continue // full: the caller falls back to the Go heap
		}
		if len(b) != n || cap(b) != (n+minBlock-1)&^(minBlock-1) {
			t.Fatalf("alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		fill := byte(round)
		for _, i := range probes(n) {
			b[i] = fill
		}
		live = append(live, block{b, fill})
	}
	for _, bl := range live {
		m.free(bl.b)
	}
	if free, used := m.freeBytes(); free != size || used != 0 || len(m.avail[m.top]) != 1 {
		t.Fatalf("after freeing everything: %d free, %d handed out, %d top blocks; want %d, 0, 1", free, used, len(m.avail[m.top]), size)
	}
	if b := m.alloc(size + 1); b != nil {
		t.Errorf("alloc of more than the slab gave %d bytes", cap(b))
	}
	m.free(make([]byte, 100)) // not the slab's: ignored
	m.free(nil)
	b := m.alloc(100)
	m.free(b)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a block freed twice did not panic")
			}
		}()
		m.free(b)
	}()
}

// probes are the positions of an n-byte block the test writes and checks:
// its ends and every 4 KiB.
func probes(n int) []int {
	p := []int{n - 1}
	for i := 0; i < n; i += 4096 {
		p = append(p, i)
	}
	return p
}

// chunkMemSize follows the cache's bound: a power of two, at most
// defaultChunkMem, none below 1 MiB.
func TestChunkMemSize(t *testing.T) {
	for _, tt := range []struct{ cache, want int64 }{
		{DefaultCacheSize, defaultChunkMem},
		{48 << 20, 32 << 20},
		{1 << 20, 1 << 20},
		{1<<20 - 1, 0},
	} {
		if got := chunkMemSize(Options{CacheSize: tt.cache}); got != tt.want {
			t.Errorf("CacheSize %d: slab %d, want %d", tt.cache, got, tt.want)
		}
	}
}

// float32Bytes returns n bytes of float32 values like embeddings (normal,
// small), which the chunker stores shuffled: the cold segments' format.
func float32Bytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+4 <= n; i += 4 {
		binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32(rng.NormFloat64()*0.05)))
	}
	return b
}

// Readers at random offsets and sequential readers, all at once, on a cold
// segment (chunks of 2-8 MiB, stored shuffled), a page file (32 KiB chunks)
// and a WAL segment (1 MiB chunks), through a mount whose chunk cache and
// chunk memory are small enough that blocks are recycled all the time: every
// byte matches the source, and once the readers are done and the cache is
// emptied every block of the chunk memory is free again (no pin or block
// leaks, no block released twice, which panics).
func TestConcurrentReadsRecycleChunkMemory(t *testing.T) {
	requireFUSE(t)
	tr := repotest.New(t, repo.InitOptions{})
	dd := filepath.Join(t.TempDir(), "data")
	sp := "spaces/" + testSpace + "/"
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(3, 4))
	files[sp+"cold/seg-000001.col"] = float32Bytes(rng, 10<<20+4321)
	files[sp+"warm/warm_tier.dat"] = float32Bytes(rng, 2<<20)
	files[sp+"wal/wal-000001.log"] = pseudoRandom(rng, 2<<20+77)
	for rel, b := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dd, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dd, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Space: testSpace, DataDir: dd})
	if n := len(fileNodeOf(t, tr.Repository, sn, sp+"cold/seg-000001.col").Content); n < 2 {
		t.Fatalf("the cold segment has %d chunks, want several", n)
	}
	// 6 MiB of cache, 4 MiB of chunk memory: less than one reader's
	// readahead, so the cache evicts and the slab runs out and refills.
	s, mp, logs := mount(t, tr.Reopen(t), Options{CacheSize: 6 << 20})
	if s.FS.mem == nil || len(s.FS.mem.slab) != 4<<20 {
		t.Fatalf("chunk memory: %v, want a 4 MiB slab", s.FS.mem != nil)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	reader := func(id int, rel string, random bool) {
		defer wg.Done()
		want := files[rel]
		f, err := os.Open(filepath.Join(mp, "snapshots", sn.ShortID(), rel))
		if err != nil {
			errs <- err
			return
		}
		defer f.Close()
		r := rand.New(rand.NewPCG(uint64(id), 99))
		for round := range 2 {
			// Out of the kernel's page cache, so that every read reaches
			// the mount again (FOPEN_KEEP_CACHE keeps pages across opens).
			if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
				errs <- err
				return
			}
			if !random {
				got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(want))))
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("reader %d round %d: sequential read of %s: %d bytes, %v: differ from the source", id, round, rel, len(got), err)
					return
				}
				continue
			}
			for range 6 {
				off := r.IntN(len(want))
				n := min(1+r.IntN(3<<20), len(want)-off)
				got := make([]byte, n)
				if _, err := f.ReadAt(got, int64(off)); err != nil && err != io.EOF {
					errs <- fmt.Errorf("reader %d: %s at %d+%d: %v", id, rel, off, n, err)
					return
				}
				if !bytes.Equal(got, want[off:off+n]) {
					errs <- fmt.Errorf("reader %d: %s at %d+%d differs from the source", id, rel, off, n)
					return
				}
			}
		}
	}
	id := 0
	for rel := range files {
		for _, random := range []bool{false, true, true} {
			id++
			wg.Add(1)
			go reader(id, rel, random)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if l := logs.String(); l != "" {
		t.Errorf("unexpected log output:\n%s", l)
	}
	// Unmount stops the prefetch workers; then empty the cache: every
	// block must be back.
	if _, err := s.Unmount(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.FS.chunks.Purge()
	m := s.FS.mem
	free, used := m.freeBytes()
	t.Logf("chunk memory: %d allocations from the slab, %d from the Go heap", m.stats.hits, m.stats.misses)
	if free != m.faulted || used != 0 {
		t.Errorf("after the readers and an emptied cache: %d of the %d bytes faulted in free, %d blocks handed out; want all free", free, m.faulted, used)
	}
	if m.stats.hits == 0 || m.stats.misses == 0 {
		t.Errorf("%d allocations from the slab, %d from the heap: want both (the slab must fill and be reused)", m.stats.hits, m.stats.misses)
	}
}
