//go:build linux

package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
	"memento/repo/repotest"
)

// readAllSizes reads r to its end in reads of the sizes given, in turn,
// and returns the bytes and the error that ended it (nil at io.EOF).
func readAllSizes(r io.Reader, sizes ...int) ([]byte, error) {
	var out []byte
	for i := 0; ; i++ {
		b := make([]byte, sizes[i%len(sizes)])
		n, err := r.Read(b)
		out = append(out, b[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestRingReaderReadsColdFile: a file not in the page cache, read through
// a large-file reader's ring (its waits parked on the eventfd) in reads of
// several sizes, gives the file's bytes and then io.EOF, as os.File.Read
// does; the reads went through the ring to the end.
func TestRingReaderReadsColdFile(t *testing.T) {
	requireRing(t)
	path, want := coldFile(t, t.TempDir(), 24<<20+5)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rings := &bigRings{}
	defer rings.close()
	rr := newRingReader(f, rings)
	ring := rr.ring
	if ring == nil || ring.ev == nil {
		t.Fatalf("ring %v: want a ring waiting on its eventfd", ring)
	}
	got, err := readAllSizes(rr, 1<<20, 4096+3, 512<<10, 1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%v), want the file's %d", len(got), err, len(want))
	}
	if rr.ring != ring || ring.ev == nil {
		t.Fatal("the reads left the parked ring")
	}
	if n, err := rr.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want 0, EOF", n, err)
	}
	rr.release()
	if len(rings.free) != 1 || len(rings.all) != 1 {
		t.Fatalf("%d free of %d rings, want the one back", len(rings.free), len(rings.all))
	}
}

// failingFile is a FUSE file of size bytes whose reads from failAt on
// fail with EIO.
type failingFile struct {
	fs.Inode
	size, failAt int64
}

func (f *failingFile) Open(context.Context, uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *failingFile) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode, out.Size = syscall.S_IFREG|0o444, uint64(f.size)
	return 0
}

func (f *failingFile) Read(_ context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= f.failAt {
		return nil, syscall.EIO
	}
	n := min(int64(len(dest)), f.failAt-off, f.size-off)
	return fuse.ReadResultData(repotest.RandomBytes(uint64(off), int(n))), 0
}

// TestRingReaderReadErrorAsRead: a file whose reads fail mid-file (EIO
// from 3 MiB on) read through a ring gives the bytes before and the error
// os.File.Read gives (an *fs.PathError naming the file, wrapping EIO),
// and a backup of it fails with the line a backup reading it with
// read(2) fails with: the file, the offset, the error.
func TestRingReaderReadErrorAsRead(t *testing.T) {
	requireRing(t)
	path := mountFUSE(t, "failing", &failingFile{size: 8 << 20, failAt: 3 << 20})
	read := func(ring bool) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var r io.Reader = f
		if ring {
			rings := &bigRings{}
			defer rings.close()
			rr := newRingReader(f, rings)
			defer func() {
				if rr.ring == nil {
					t.Error("the ring was left: the error was not the ring's")
				}
			}()
			r = rr
		}
		return readAllSizes(r, 1<<20)
	}
	wantData, wantErr := read(false)
	gotData, gotErr := read(true)
	if wantErr == nil || gotErr == nil || gotErr.Error() != wantErr.Error() || !errors.Is(gotErr, syscall.EIO) || !bytes.Equal(gotData, wantData) {
		t.Fatalf("through the ring: %d bytes, %v; read(2): %d bytes, %v", len(gotData), gotErr, len(wantData), wantErr)
	}
	if want := "read " + path + ": input/output error"; gotErr.Error() != want || len(gotData) != 3<<20 {
		t.Fatalf("error %q after %d bytes, want %q after %d", gotErr, len(gotData), want, 3<<20)
	}

	// The backup's line: what the chunk pipeline makes of read(2)'s error.
	tr := repotest.New(t, repo.InitOptions{})
	r := tr.Repository
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pipe := chunk.NewPipeline(0, chunk.DefaultLevel)
	defer pipe.Close()
	rel := "failing"
	_, _, _, perr := pipe.SplitFile(context.Background(), f, rel, r.Polynomial(), r.Config().ParamSet().For(rel), r.ChunkKey(""),
		func(chunk.ID) bool { return false }, func(*chunk.Chunk) error { return nil })
	if perr == nil {
		t.Fatal("read(2) through the pipeline: no error")
	}
	_, err = Backup(context.Background(), r, BackupOptions{Paths: []string{filepath.Dir(path)}})
	if want := "backup " + path + ": " + perr.Error(); err == nil || err.Error() != want {
		t.Fatalf("backup: %v\nwant: %s", err, want)
	}
}

// TestRingReaderFallsBack: a read the ring cannot run is read with
// read(2), the same bytes: a file system that refuses io_uring reads
// (EINVAL, as the kernel answers; the file leaves the ring, which goes
// back to its pool), a submission that fails (the ring is dropped and
// closed), and no descriptor left for a ring (the file is read with
// read(2); a later file takes a ring).
func TestRingReaderFallsBack(t *testing.T) {
	requireRing(t)
	path, want := coldFile(t, t.TempDir(), 6<<20+77)
	check := func(name string, rr *ringReader) {
		t.Helper()
		got, err := readAllSizes(rr, 1<<20, 1000)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes (%v), want the file's %d", name, len(got), err, len(want))
		}
	}
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}

	t.Run("refused", func(t *testing.T) {
		rings := &bigRings{}
		defer rings.close()
		refused := 0
		rings.hook = func(r *fileRing) {
			r.hook = &ringHook{reaped: func(ops []ringOp) {
				if refused == 0 { // the first read, refused: nothing read
					refused++
					ops[0].res = -int32(syscall.EINVAL)
				}
			}}
		}
		rr := newRingReader(open(), rings)
		check("refused", rr)
		if refused != 1 || rr.ring != nil || len(rings.free) != 1 {
			t.Fatalf("refused %d reads, reader's ring %v, %d free: want one refusal, the ring back in the pool", refused, rr.ring, len(rings.free))
		}
	})

	t.Run("submission fails", func(t *testing.T) {
		rings := &bigRings{}
		defer rings.close()
		calls := 0
		rings.hook = func(r *fileRing) {
			r.hook = &ringHook{enter: func(r *fileRing, toSubmit, minComplete uint32, sys func(uint32, uint32) (uintptr, syscall.Errno)) (uintptr, syscall.Errno) {
				if calls++; calls == 3 { // the third read's submission: the kernel takes nothing
					return 0, syscall.ENOMEM
				}
				return sys(toSubmit, minComplete)
			}}
		}
		rr := newRingReader(open(), rings)
		check("submission fails", rr)
		if calls < 3 || rr.ring != nil || len(rings.all) != 0 {
			t.Fatalf("%d enters, reader's ring %v, %d rings kept: want the ring dropped", calls, rr.ring, len(rings.all))
		}
	})

	t.Run("no descriptor", func(t *testing.T) {
		rings := &bigRings{}
		defer rings.close()
		f := open()
		restore := setFDLimit(t, uint64(openFDCount(t)+16))
		fds := openUntilEMFILE(t, nil)
		rr := newRingReader(f, rings)
		for _, fd := range fds {
			syscall.Close(fd)
		}
		restore()
		if rr.ring != nil || rings.off {
			t.Fatalf("ring %v, rings off %v: want no ring for this file, the rings still on", rr.ring, rings.off)
		}
		check("no descriptor", rr)
		if rr2 := newRingReader(open(), rings); rr2.ring == nil {
			t.Fatal("no ring once descriptors are free again")
		} else {
			rr2.release()
		}
	})
}
