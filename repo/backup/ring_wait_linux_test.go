//go:build linux

package backup

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// heldFile is a FUSE file whose reads do not return until release is
// closed: a reader of it sits in the kernel, in a wait that only a fatal
// signal ends (the kernel's interrupt of the request is ignored).
type heldFile struct {
	fs.Inode
	mu      sync.Mutex
	release chan struct{}
	reads   atomic.Int32 // reads started
}

// hold makes the reads from now on wait, and returns what releases them.
func (h *heldFile) hold() (release func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	h.release = ch
	h.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (h *heldFile) Open(context.Context, uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (h *heldFile) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode, out.Size = syscall.S_IFREG|0o444, 1
	return 0
}

func (h *heldFile) Read(context.Context, fs.FileHandle, []byte, int64) (fuse.ReadResult, syscall.Errno) {
	h.reads.Add(1)
	h.mu.Lock()
	ch := h.release
	h.mu.Unlock()
	<-ch
	return fuse.ReadResultData([]byte{'x'}), 0
}

// mountHeld mounts a FUSE file system holding one heldFile, "held", and
// returns its path; the test is skipped where FUSE cannot be mounted. When
// the test ends, the reads held are released and it is unmounted.
func mountHeld(t *testing.T) (string, *heldFile) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a FUSE file system needs root here")
	}
	if fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0); err != nil {
		t.Skipf("cannot open /dev/fuse: %v", err)
	} else {
		syscall.Close(fd)
	}
	mnt := t.TempDir()
	root := &fs.Inode{}
	held := &heldFile{}
	srv, err := fs.Mount(mnt, root, &fs.Options{
		MountOptions: fuse.MountOptions{DirectMount: true, DisableSplice: true},
		OnAdd: func(ctx context.Context) {
			root.AddChild("held", root.NewPersistentInode(ctx, held, fs.StableAttr{Mode: syscall.S_IFREG}), true)
		},
	})
	if err != nil {
		t.Skipf("cannot mount FUSE: %v", err)
	}
	t.Cleanup(func() {
		held.mu.Lock()
		ch := held.release
		held.mu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return filepath.Join(mnt, "held"), held
}

// coldFile writes n random bytes to a file under dir (a disk file system,
// not tmpfs) and takes its pages out of the page cache.
func coldFile(t *testing.T, dir string, n int) (string, []byte) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs: no read of it needs the disk", dir)
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	p := filepath.Join(dir, "cold")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (n+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i, v := range vec {
		if v&1 != 0 {
			t.Fatalf("page %d of %s is still in the page cache after FADV_DONTNEED", i, p)
		}
	}
	return p, data
}

// TestFileRingCompletesWhileSubmitterBlocked: a ring's read of a file not
// in the page cache completes (the kernel posts its completion) as task
// work of the thread that submitted it. A batch must not wait for what
// that thread does next: here, after the batch is submitted, another
// goroutine enters a read that blocks in the kernel (a FUSE file that
// answers only when told to, standing for a cold read(2), an fsync, a page
// fault, all waits that task work does not interrupt). With GOMAXPROCS 1,
// such goroutines run next on the submitting thread unless the batch keeps
// its thread: the batch then never completes until their reads return.
func TestFileRingCompletesWhileSubmitterBlocked(t *testing.T) {
	requireRing(t)
	heldPath, held := mountHeld(t)
	release := held.hold()
	defer func() { release() }()
	hfd, err := syscall.Open(heldPath, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(hfd)
	r, err := newFileRing(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	// Which thread the readers below take is the scheduler's choice: a
	// ring that parks its goroutine on a free thread stalls in about half
	// the attempts here; one that keeps its thread never does.
	for attempt := range 4 {
		release()
		release = held.hold()
		path, want := coldFile(t, t.TempDir(), 8<<20)
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ops := []ringOp{{fd: fd, buf: make([]byte, len(want)+1), link: true}, {fd: fd, close: true}}
		const readers = 16
		returned := make(chan struct{}, readers)
		done := make(chan error, 1)
		// Started first, so that they run once the batch's goroutine
		// (runnext) parks to wait for its completions, the first on its
		// thread; the others take the threads the runtime then wakes, the
		// submitting one among them if it went idle.
		for range readers {
			go func() {
				var b [1]byte
				syscall.Read(hfd, b[:])
				returned <- struct{}{}
			}()
		}
		go func() { done <- r.run(ops) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("attempt %d: run: %v", attempt, err)
			}
		case <-returned:
			t.Fatalf("attempt %d: a held read returned before it was released", attempt)
		case <-time.After(20 * time.Second):
			// Not a speed limit: the disk read takes milliseconds; the
			// completion waits for a held read, which never returns
			// until released.
			release()
			<-done
			t.Fatalf("attempt %d: the batch completed only once the goroutines run on its submitting thread left the kernel", attempt)
		}
		release()
		for range readers {
			<-returned
		}
		if got := ops[0].res; int(got) != len(want) || !bytes.Equal(ops[0].buf[:got], want) || ops[1].res != 0 {
			t.Fatalf("attempt %d: read %d (want %d bytes, same bytes), close %d", attempt, got, len(want), ops[1].res)
		}
	}
}
