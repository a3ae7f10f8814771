package restore

import (
	"bytes"
	"errors"
	"io/fs"
	"memento/repo/repotest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// writerOp is one delivery to a windowWriter: n bytes of data (seeded),
// or a chunk of n zero bytes that was never read.
type writerOp struct {
	skip bool
	n    int
}

// TestWindowWriter delivers sequences of data and zero runs that cross
// block and window boundaries, each data op opened in place in its window
// where the writer offers one (as StreamBlobs does with Dest) or copied in,
// and checks the bytes, the size and that long zero runs became holes.
func TestWindowWriter(t *testing.T) {
	const blk = writeAlign
	cases := []struct {
		name string
		ops  []writerOp
		hole int64 // at least this many bytes must be unallocated
	}{
		{"one byte", []writerOp{{n: 1}}, 0},
		{"one block", []writerOp{{n: blk}}, 0},
		{"unaligned tail", []writerOp{{n: 3*blk + 17}}, 0},
		{"exactly one window", []writerOp{{n: winBytes}}, 0},
		{"two windows and a bit", []writerOp{{n: 2*winBytes + 5}}, 0},
		{"many small writes", repeatOps(writerOp{n: 1000}, 30000), 0},
		{"chunks across windows", repeatOps(writerOp{n: 3<<20 + 123}, 9), 0},
		{"more windows than slots, 32 KiB chunks", repeatOps(writerOp{n: 32 << 10}, 700), 0},
		{"hole in the middle", []writerOp{{n: 100}, {skip: true, n: 1 << 20}, {n: 100}}, 1<<20 - 2*blk},
		{"leading hole", []writerOp{{skip: true, n: 64 << 10}, {n: 10}}, 64<<10 - blk},
		{"trailing hole", []writerOp{{n: blk + 1}, {skip: true, n: 8 << 20}}, 8<<20 - blk},
		{"hole of many windows", []writerOp{{n: 5}, {skip: true, n: 6 * winBytes}, {n: 7}}, 6*winBytes - 2*blk},
		{"short zero run stays data", []writerOp{{n: 10}, {skip: true, n: 100}, {n: 10}}, 0},
		{"zero run within one block", []writerOp{{n: blk - 10}, {skip: true, n: 20}, {n: 30}}, 0},
		{"holes across windows", []writerOp{{n: winBytes - 7}, {skip: true, n: 3*blk + 5}, {n: winBytes + 9}, {skip: true, n: blk}, {n: 1}}, blk},
		{"16 KiB pages, every other zero", alternate(16<<10, 40), 19 * (16 << 10)},
		{"32 KiB pages, every other zero, many windows", alternate(32<<10, 600), 299 * (32 << 10)},
	}
	for _, inPlace := range []bool{true, false} {
		for _, tc := range cases {
			name := "copied/" + tc.name
			if inPlace {
				name = "in place/" + tc.name
			}
			t.Run(name, func(t *testing.T) {
				p := filepath.Join(t.TempDir(), "f")
				size := int64(0)
				for _, op := range tc.ops {
					size += int64(op.n)
				}
				w, err := createWindowWriter(p, size)
				if err != nil {
					t.Fatal(err)
				}
				defer w.close()
				var want []byte
				placed := 0
				for i, op := range tc.ops {
					off := int64(len(want))
					if op.skip {
						want = append(want, make([]byte, op.n)...)
						err = w.put(zeros(op.n), true)
					} else {
						d := repotest.RandomBytes(uint64(i+1), op.n)
						d[0] |= 1 // never all zero
						want = append(want, d...)
						if dst := w.dest(off, op.n); inPlace && dst != nil {
							copy(dst, d) // as a decoder opening the blob in place
							d = dst
							placed++
						}
						err = w.put(d, false)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if inPlace && placed == 0 && len(tc.ops) > 1 {
					t.Errorf("no op was opened in place")
				}
				if err := w.finish(); err != nil {
					t.Fatal(err)
				}
				if err := w.close(); err != nil {
					t.Fatal(err)
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
			})
		}
	}
}

// TestWindowWriterDestOnlyInOpenWindows: dest offers a place only within
// one window that is open (its slot free), never across a window's end,
// beyond the file or beyond the open windows, and finish refuses a file
// not delivered whole.
func TestWindowWriterDestOnlyInOpenWindows(t *testing.T) {
	size := int64(10 * winBytes)
	w, err := createWindowWriter(filepath.Join(t.TempDir(), "f"), size)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	k := int64(len(w.slots))
	for _, c := range []struct {
		off  int64
		n    int
		want bool
	}{
		{0, 100, true},
		{winBytes - 50, 100, false},          // across a window's end
		{(k - 1) * winBytes, winBytes, true}, // the last open window, whole
		{k * winBytes, 10, false},            // not open yet
		{size - 10, 20, false},               // beyond the file
		{-1, 1, false},
	} {
		if got := w.dest(c.off, c.n) != nil; got != c.want {
			t.Errorf("dest(%d, %d) offered a place: %v, want %v", c.off, c.n, got, c.want)
		}
	}
	if d := w.dest(5, 10); len(d) != 10 || cap(d) != 10 {
		t.Errorf("dest(5, 10) gave len %d cap %d, want 10 and 10 (no decoder may write past its blob)", len(d), cap(d))
	}
	if err := w.put(make([]byte, 10), false); err != nil {
		t.Fatal(err)
	}
	if err := w.finish(); err == nil || !strings.Contains(err.Error(), "10 of 41943040 bytes delivered") {
		t.Errorf("finish of a file delivered in part: %v, want an error saying 10 of 41943040 bytes", err)
	}
}

// TestWindowWriterWithoutODirect: on a filesystem that refuses O_DIRECT
// (tmpfs), files are written through the page cache, correctly.
func TestWindowWriterWithoutODirect(t *testing.T) {
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
	want := repotest.RandomBytes(3, winBytes+12345)
	w, err := createWindowWriter(p, int64(len(want)))
	if err != nil {
		t.Fatalf("create on tmpfs: %v", err)
	}
	defer w.close()
	if w.direct {
		t.Log("this tmpfs takes O_DIRECT")
	}
	if err := w.put(want, false); err != nil {
		t.Fatal(err)
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	w.close()
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes (%v), want %d, equal=%v", len(got), err, len(want), bytes.Equal(got, want))
	}
}

// TestWindowWriterRefusesExisting: a restore never writes through an
// existing file or a symlink planted in its place.
func TestWindowWriterRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	repotest.WriteFile(t, victim, []byte("keep"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{victim, link} {
		if w, err := createWindowWriter(p, 4); err == nil {
			w.close()
			t.Errorf("createWindowWriter(%s) succeeded over an existing file", filepath.Base(p))
		} else if !errors.Is(err, fs.ErrExist) && !errors.Is(err, syscall.ELOOP) {
			t.Errorf("createWindowWriter(%s): %v, want EEXIST or ELOOP", filepath.Base(p), err)
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
