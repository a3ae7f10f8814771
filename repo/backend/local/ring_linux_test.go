//go:build linux

package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/uring"
)

// syncLog records the fsyncs of a ring (syncRing.onSync).
type syncLog struct {
	mu   sync.Mutex
	ring map[string]int // fsyncs by base name pattern: "tmp", "dir"; via the ring
	any  map[string]int // every fsync
}

func logSyncs(r *syncRing) *syncLog {
	l := &syncLog{ring: map[string]int{}, any: map[string]int{}}
	r.onSync = func(name string, viaRing bool) {
		kind := "dir"
		if filepath.Base(name)[0] == '.' {
			kind = "tmp"
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.any[kind]++
		if viaRing {
			l.ring[kind]++
		}
	}
	return l
}

// throughRing fails t unless files and directories were fsynced and every
// fsync went through the ring (where the kernel has io_uring): the
// power-cut tests are about the ring's fsyncs, not only the plain ones.
func (l *syncLog) throughRing(t *testing.T) {
	t.Helper()
	r, err := uring.Setup(4)
	if err != nil {
		t.Logf("no io_uring (%v): the fsyncs were plain ones", err)
		return
	}
	r.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.any["tmp"] == 0 || l.any["dir"] == 0 || l.ring["tmp"] != l.any["tmp"] || l.ring["dir"] != l.any["dir"] {
		t.Fatalf("fsyncs %v, through the ring %v: want every file's and directory's through the ring", l.any, l.ring)
	}
}

// fdIs reports whether descriptor fd is open on an anonymous inode of
// kind ("io_uring", "eventfd").
func fdIs(fd int, kind string) bool {
	l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return err == nil && l == "anon_inode:["+kind+"]"
}

func needRing(t *testing.T) {
	t.Helper()
	r, err := uring.Setup(4)
	if err != nil {
		t.Skipf("no io_uring: %v", err)
	}
	r.Close()
}

// Writes fsync their file and directory through the ring, concurrently,
// and the files hold their bytes.
func TestSyncRingFsyncs(t *testing.T) {
	needRing(t)
	b := newBackend(t)
	l := logSyncs(b.ring)
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			writeFile(t, b, fmt.Sprintf("data/%02x/f%d", i%4, i), randBytes(uint64(i), 3000+i))
		})
	}
	wg.Wait()
	for i := range n {
		if got := readAll(t, b, fmt.Sprintf("data/%02x/f%d", i%4, i), 0, -1); !bytes.Equal(got, randBytes(uint64(i), 3000+i)) {
			t.Fatalf("file %d: wrong bytes", i)
		}
	}
	// Each write: its temporary file and its directory; the four
	// directories made, their parents.
	if l.any["tmp"] != n || l.any["dir"] < n {
		t.Fatalf("fsyncs: %v, want %d files and at least %d directories", l.any, n, n)
	}
	if l.ring["tmp"] != n || l.ring["dir"] != l.any["dir"] {
		t.Fatalf("fsyncs through the ring: %v of %v", l.ring, l.any)
	}
	if len(b.ring.waiting) != 0 {
		t.Fatalf("%d fsyncs still waiting", len(b.ring.waiting))
	}
}

// An fsync the ring refuses to take (io_uring_enter fails) is a plain
// fsync, and the refused entry is withdrawn from the submission queue.
func TestSyncRingSubmitFailsPlainFsync(t *testing.T) {
	needRing(t)
	b := newBackend(t)
	l := logSyncs(b.ring)
	writeFile(t, b, "data/aa/one", []byte("one"))
	if l.ring["tmp"] != 1 {
		t.Fatalf("the first write's fsync did not go through the ring: %v", l.ring)
	}
	// The ring's descriptor now names /dev/null: io_uring_enter fails
	// (EOPNOTSUPP), as it would for any refused submission.
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if err := unix.Dup3(int(null.Fd()), b.ring.ring.FD, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	writeFile(t, b, "data/aa/two", []byte("two"))
	if got := readAll(t, b, "data/aa/two", 0, -1); string(got) != "two" {
		t.Fatalf("read %q", got)
	}
	if l.any["tmp"] != 2 || l.ring["tmp"] != 1 || l.any["dir"] != l.ring["dir"]+1 {
		t.Fatalf("fsyncs %v, through the ring %v: want the second write's file and directory fsynced plainly", l.any, l.ring)
	}
	if head, tail := *b.ring.ring.SQHead, *b.ring.ring.SQTail; head != tail {
		t.Fatalf("submission queue head %d, tail %d: a refused fsync was left in it", head, tail)
	}
	b.Close()
}

// Where the eventfd cannot be registered (a ring that has one already:
// EBUSY), the ring is closed and every fsync is a plain one.
func TestSyncRingNoEventFD(t *testing.T) {
	needRing(t)
	ring, err := uring.Setup(syncRingEntries)
	if err != nil {
		t.Fatal(err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	e := int32(efd)
	if _, _, errno := syscall.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(ring.FD), uring.RegisterEventFD, uintptr(unsafe.Pointer(&e)), 1, 0, 0); errno != 0 {
		t.Fatal(errno)
	}
	r := newSyncRing()
	if err := r.attach(ring); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("attach: %v, want EBUSY", err)
	}
	if r.ring != nil || r.ev != nil {
		t.Fatal("a ring without its eventfd was kept")
	}
	if fdIs(ring.FD, "io_uring") {
		t.Fatal("the ring whose eventfd failed was left open")
	}
	r.tried = true // as fsync after a failed start
	l := logSyncs(r)
	f, err := os.CreateTemp(os.Getenv(pidsDirEnv), ".f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.sync(f); err != nil {
		t.Fatal(err)
	}
	if l.any["tmp"] != 1 || l.ring["tmp"] != 0 {
		t.Fatalf("fsyncs %v, through the ring %v: want one plain", l.any, l.ring)
	}
}

// An fsync that fails through the ring fails as f.Sync does: the same
// text, naming the file, wrapping the errno (a pipe: EINVAL).
func TestSyncRingErrorAsSync(t *testing.T) {
	needRing(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	r := newSyncRing()
	defer r.close()
	l := logSyncs(r)
	got := r.sync(pw)
	want := pw.Sync()
	if l.ring["dir"] != 1 {
		t.Fatalf("the fsync did not go through the ring: %v", l.ring)
	}
	if want == nil || got == nil || got.Error() != want.Error() || !errors.Is(got, syscall.EINVAL) {
		t.Fatalf("through the ring: %v; fsync(2): %v; want the same, wrapping EINVAL", got, want)
	}
}

// After Close the ring is gone (its descriptors closed) and the Backend
// still writes, with plain fsyncs.
func TestSyncRingClose(t *testing.T) {
	needRing(t)
	b := newBackend(t)
	l := logSyncs(b.ring)
	writeFile(t, b, "data/aa/one", []byte("one"))
	ringFD, evFD := b.ring.ring.FD, int(b.ring.ev.Fd())
	if !fdIs(ringFD, "io_uring") || !fdIs(evFD, "eventfd") {
		t.Fatalf("descriptors %d and %d are not the ring and its eventfd", ringFD, evFD)
	}
	b.Close()
	if fdIs(ringFD, "io_uring") || fdIs(evFD, "eventfd") {
		t.Fatal("the ring or its eventfd is still open after Close")
	}
	writeFile(t, b, "data/aa/two", []byte("two"))
	if l.any["tmp"] != 2 || l.ring["tmp"] != 1 {
		t.Fatalf("fsyncs %v, through the ring %v: want the write after Close plain", l.any, l.ring)
	}
	if b.ring.ring != nil {
		t.Fatal("a write after Close made a ring")
	}
}

const pidsLimitEnv = "MEMENTO_LOCAL_TEST_PIDS_CGROUP"

// pidsDirEnv names the directory the helper writes its file in: the
// parent's t.TempDir, removed by the parent (the helper ends with os.Exit,
// which runs no cleanup of its own).
const pidsDirEnv = "MEMENTO_LOCAL_TEST_PIDS_DIR"

// pidsCgroupRoot is where a pids cgroup can be made (cgroup v1's pids
// hierarchy, or v2's root with the pids controller), "" where none.
func pidsCgroupRoot() string {
	if st, err := os.Stat("/sys/fs/cgroup/pids/cgroup.procs"); err == nil && st.Mode().IsRegular() {
		return "/sys/fs/cgroup/pids"
	}
	if c, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && bytes.Contains(c, []byte("pids")) {
		return "/sys/fs/cgroup"
	}
	return ""
}

// TestSyncRingPidsLimitHelper is the child process of
// TestSyncRingWorkerCannotStart: it moves itself into a pids cgroup
// allowing no new task, then fsyncs a file twice through a fresh ring
// from a thread that has not used io_uring (so the kernel must start an
// io-wq worker for it, and cannot) and prints what the fsyncs returned
// and whether the ring was kept.
func TestSyncRingPidsLimitHelper(t *testing.T) {
	cg := os.Getenv(pidsLimitEnv)
	if cg == "" {
		t.Skip("helper process only")
	}
	f, err := os.CreateTemp(os.Getenv(pidsDirEnv), ".f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	// Threads for the runtime to reuse once the limit holds (it keeps
	// idle ones): 8 goroutines each on a thread of its own at once.
	var locked, release sync.WaitGroup
	locked.Add(8)
	release.Add(1)
	for range 8 {
		go func() {
			runtime.LockOSThread()
			locked.Done()
			release.Wait()
			runtime.UnlockOSThread()
		}()
	}
	locked.Wait()
	release.Done()
	r := newSyncRing()
	defer r.close()
	l := logSyncs(r)
	done := make(chan string, 1)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine: its io-wq with it
		tasks, err := os.ReadDir("/proc/self/task")
		if err == nil {
			err = os.WriteFile(filepath.Join(cg, "pids.max"), []byte(strconv.Itoa(len(tasks))), 0)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
		}
		if err != nil {
			done <- fmt.Sprintf("error: setup: %v", err)
			return
		}
		err = r.sync(f)
		r.mu.Lock()
		made := r.tried
		r.mu.Unlock()
		if err == nil {
			err = r.sync(f)
		}
		r.mu.Lock()
		kept := r.ring != nil
		r.mu.Unlock()
		done <- fmt.Sprintf("ring made %v, kept %v, fsyncs %v, through the ring %v, error: %v", made, kept, l.any, l.ring, err)
	}()
	fmt.Println(<-done)
	os.Exit(0) // now: what is left to do may need threads the limit refuses
}

// Where the kernel cannot start an io-wq worker to run the ring's fsync
// (a pids cgroup or RLIMIT_NPROC at its limit: the fsync completes with
// ECANCELED, not run), the fsync is a plain one and succeeds, as fsync(2)
// does there, and the ring is given up: each fsync through it would first
// wait for the kernel's retries of the worker (~50 ms).
func TestSyncRingWorkerCannotStart(t *testing.T) {
	needRing(t)
	root := pidsCgroupRoot()
	if os.Geteuid() != 0 || root == "" {
		t.Skip("needs root and a pids cgroup")
	}
	cg := filepath.Join(root, fmt.Sprintf("memento-local-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("make a pids cgroup: %v", err)
	}
	defer os.Remove(cg) // once the child, its only task, has exited
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyncRingPidsLimitHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), pidsLimitEnv+"="+cg, pidsDirEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil && (bytes.Contains(out, []byte("newosproc")) || bytes.Contains(out, []byte("failed to create new OS thread")) ||
		bytes.Contains(out, []byte("pthread_create failed"))) {
		t.Skipf("the helper's runtime needed a thread the limit refused: %s", out)
	}
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	switch got := string(out); {
	case strings.Contains(got, "error: setup:"):
		t.Skipf("could not limit the helper's tasks: %s", got)
	case strings.Contains(got, "through the ring map[tmp:2], error: <nil>\n"):
		t.Skipf("the kernel started a worker anyway: %s", got)
	case !strings.Contains(got, "ring made true, kept false, fsyncs map[tmp:2], through the ring map[], error: <nil>\n"):
		t.Fatalf("two fsyncs, the first's io-wq worker could not start: %s; want both done plainly, without error, and the ring given up after the first (each fsync through it would wait for the kernel's retries of the worker, ~50 ms)", got)
	}
}
