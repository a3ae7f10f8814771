package restore

import (
	"bytes"
	"errors"
	"io/fs"
	"memento/repo/repotest"
	"memento/repo/slabmem"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// writerOp is one call on a fileWriter: n bytes of data (seeded), or a skip
// of n zero bytes.
type writerOp struct {
	skip  bool
	n     int
	zeros [][2]int // data: these ranges [from, to) of it are zeros
}

// TestFileWriter writes sequences of data and zero runs that cross block and
// buffer boundaries, through O_DIRECT and through the page cache, and checks
// the bytes, the size and that long zero runs became holes.
func TestFileWriter(t *testing.T) {
	const blk = writeAlign
	cases := []struct {
		name string
		ops  []writerOp
		hole int64 // at least this many bytes must be unallocated
	}{
		{"empty", nil, 0},
		{"one byte", []writerOp{{n: 1}}, 0},
		{"one block", []writerOp{{n: blk}}, 0},
		{"unaligned tail", []writerOp{{n: 3*blk + 17}}, 0},
		{"exactly one buffer", []writerOp{{n: writeBufSize}}, 0},
		{"two buffers and a bit", []writerOp{{n: 2*writeBufSize + 5}}, 0},
		{"many small writes", repeatOps(writerOp{n: 1000}, 9000), 0},
		{"hole in the middle", []writerOp{{n: 100}, {skip: true, n: 1 << 20}, {n: 100}}, 1<<20 - 2*blk},
		{"leading hole", []writerOp{{skip: true, n: 64 << 10}, {n: 10}}, 64<<10 - blk},
		{"trailing hole", []writerOp{{n: blk + 1}, {skip: true, n: 8 << 20}}, 8<<20 - blk},
		{"short zero run stays data", []writerOp{{n: 10}, {skip: true, n: 100}, {n: 10}}, 0},
		{"zero run within one block", []writerOp{{n: blk - 10}, {skip: true, n: 20}, {n: 30}}, 0},
		{"holes across buffer flushes", []writerOp{{n: writeBufSize - 7}, {skip: true, n: 3*blk + 5}, {n: writeBufSize + 9}, {skip: true, n: blk}, {n: 1}}, blk},
		{"16 KiB pages, every other zero", alternate(16<<10, 40), 19 * (16 << 10)},
		// Zeros inside the data written (a chunk of a sparse image holding
		// the end of an extent and the start of a hole): runs of holeMin and
		// more stay holes, shorter ones are written.
		{"zero run inside data", []writerOp{{n: 3<<20 + 100, zeros: [][2]int{{blk + 10, 2<<20 + blk + 10}}}}, 2<<20 - 2*blk},
		{"lone block amid zeros", []writerOp{{n: 8 << 20, zeros: [][2]int{{0, 3 << 20}, {3<<20 + blk, 8 << 20}}}}, 8<<20 - blk},
		{"zeros inside data across flushes", []writerOp{{n: writeBufSize - 5}, {n: 2 * writeBufSize, zeros: [][2]int{{0, writeBufSize + 3*blk}}}, {n: 7}}, writeBufSize - blk},
		{"short zero run inside data is written", []writerOp{{n: 1 << 20, zeros: [][2]int{{100 << 10, 100<<10 + holeMin - blk}}}}, -1},
	}
	for _, mode := range []struct {
		name   string
		direct bool
		mem    bool // the buffers from a slabmem.Mem
	}{{"direct", true, false}, {"buffered", false, false}, {"direct-slabmem", true, true}} {
		for _, tc := range cases {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "f")
				size := int64(0)
				for _, op := range tc.ops {
					size += int64(op.n)
				}
				if tc.name == "many small writes" {
					size = 1 // a wrong hint costs speed, never bytes
				}
				var mem *slabmem.Mem
				if mode.mem {
					mem = slabmem.New()
					defer mem.Release()
				}
				w, err := createFileWriter(p, mode.direct, size, mem)
				if err != nil {
					t.Fatal(err)
				}
				defer w.close()
				if mode.mem && w.own == nil {
					t.Fatal("the writer did not take its buffers from the slabmem.Mem")
				}
				var want []byte
				for i, op := range tc.ops {
					if op.skip {
						err = w.skip(int64(op.n))
						want = append(want, make([]byte, op.n)...)
					} else {
						d := repotest.RandomBytes(uint64(i+1), op.n)
						d[0] |= 1 // never all zero
						for _, z := range op.zeros {
							clear(d[z[0]:z[1]])
						}
						err = w.write(d)
						want = append(want, d...)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := w.finish(int64(len(want))); err != nil {
					t.Fatal(err)
				}
				if err := w.close(); err != nil {
					t.Fatal(err)
				}
				if mem != nil && mem.Out() != 0 {
					t.Fatalf("close left %d buffers of the slabmem.Mem out", mem.Out())
				}
				got, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("file holds %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
				}
				if tc.hole > 0 {
					wantSparse(t, p, tc.hole)
				}
				if tc.hole < 0 { // every whole block allocated: no hole
					if alloc := repotest.Lstat(t, p).Sys().(*syscall.Stat_t).Blocks * 512; alloc < int64(len(want))&^(blk-1) {
						t.Errorf("%d of %d bytes allocated; want no hole", alloc, len(want))
					}
				}
			})
		}
	}
}

// TestFileWriterWithoutODirect: on a filesystem that refuses O_DIRECT
// (tmpfs), files are written through the page cache, correctly.
func TestFileWriterWithoutODirect(t *testing.T) {
	dir := "/dev/shm"
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	d, err := os.MkdirTemp(dir, "memento-test-")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(d)
	p := filepath.Join(d, "f")
	w, err := createFileWriter(p, true, writeBufSize+12345, nil)
	if err != nil {
		t.Fatalf("create on tmpfs: %v", err)
	}
	defer w.close()
	if w.direct {
		t.Log("this tmpfs takes O_DIRECT")
	}
	want := repotest.RandomBytes(3, writeBufSize+12345)
	if err := w.write(want); err != nil {
		t.Fatal(err)
	}
	if err := w.finish(int64(len(want))); err != nil {
		t.Fatal(err)
	}
	w.close()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (%v), want %d, equal=%v", len(got), err, len(want), bytes.Equal(got, want))
	}
}

// TestFileWriterRefusesExisting: a restore never writes through an existing
// file or a symlink planted in its place.
func TestFileWriterRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	repotest.WriteFile(t, victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{victim, link} {
		for _, direct := range []bool{true, false} {
			if w, err := createFileWriter(p, direct, 4, nil); err == nil {
				w.close()
				t.Errorf("createFileWriter(%s, direct=%v) succeeded over an existing file", filepath.Base(p), direct)
			} else if !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ELOOP) {
				t.Errorf("createFileWriter(%s): %v, want EEXIST or ELOOP", filepath.Base(p), err)
			}
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("victim now holds %q", b)
	}
}

func repeatOps(op writerOp, n int) []writerOp {
	out := make([]writerOp, n)
	for i := range out {
		out[i] = op
	}
	return out
}

// alternate is n pages of size page, every other one zeros.
func alternate(page, n int) []writerOp {
	out := make([]writerOp, n)
	for i := range out {
		out[i] = writerOp{skip: i%2 == 1, n: page}
	}
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// wantSparse fails unless at least hole bytes of p are not allocated.
func wantSparse(t *testing.T, p string, hole int64) {
	t.Helper()
	fi := repotest.Lstat(t, p)
	alloc := fi.Sys().(*syscall.Stat_t).Blocks * 512
	if alloc > fi.Size()-hole {
		t.Errorf("%s: %d of %d bytes allocated; want a hole of at least %d bytes", filepath.Base(p), alloc, fi.Size(), hole)
	}
}
