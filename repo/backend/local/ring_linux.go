//go:build linux

package local

import (
	"errors"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/uring"
)

// reapPoll is how long the reaper waits on the eventfd before it looks at
// the completion queue anyway.
const reapPoll = time.Millisecond

// ringEntries bounds the operations in flight through one Backend's
// ring; more wait with a plain system call.
const ringEntries = 64

// maxRingWrite bounds one write through the ring (its length is 32 bits);
// the rest of a longer one is a second.
const maxRingWrite = 1 << 30

// ioRing runs a Backend's fsyncs and its packs' direct-I/O writes through
// an io_uring (IORING_OP_FSYNC, IORING_OP_WRITE) so that the goroutine
// waiting for one does not keep its P: a goroutine blocked in fsync(2) or
// in pwrite(2) of a 4 MiB O_DIRECT block holds its P until the runtime's
// sysmon takes it back (up to 10 ms later), and the compressors wait
// meanwhile. The ring signals an eventfd registered with it, which one
// reaper goroutine reads through the runtime's poller (parked), handing
// each completion to the goroutine that waits for it on a channel.
//
// The kernel runs every fsync in its io-wq workers and, on a ring
// without DEFER_TASKRUN or IOPOLL, posts the completion itself. A write
// may instead complete as task work of the thread that submitted it (a
// direct write the file system finishes asynchronously: io_complete_rw),
// run only when that thread is idle or returns to user space: a write's
// goroutine stays locked to its thread from submission to completion, so
// that the thread sleeps (and runs the task work at once) instead of
// running other goroutines' system calls meanwhile; its P is handed off
// all the same. An fsync through the ring is fsync(2) (flags 0), a write
// pwrite(2): the same durability, the same bytes.
//
// The ring is made at the first operation. Where it cannot be made (no
// io_uring, no eventfd, registering it fails), when a submission fails,
// the ring is full, the kernel cancels the operation unrun (ECANCELED,
// which also gives the ring up) or it is interrupted (EINTR), the
// operation is the plain system call, as it is after Close.
type ioRing struct {
	mu      sync.Mutex
	tried   bool // start ran
	closed  bool
	ring    *uring.Ring // nil when not working (not made, failed, closed)
	ev      *os.File    // the registered eventfd, non-blocking (the poller)
	reaping bool        // a reap goroutine runs
	next    uint64      // the last operation's user data
	waiting map[uint64]chan int32

	// onSync and onWrite, when set (by tests), are called after each
	// fsync and each writeAt with whether it went through the ring.
	onSync, onWrite func(name string, viaRing bool)
}

func newIORing() *ioRing { return &ioRing{} }

// start makes the ring and its eventfd.
func (r *ioRing) start() error {
	ring, err := uring.Setup(ringEntries)
	if err != nil {
		return err
	}
	return r.attach(ring)
}

// attach registers an eventfd with ring and makes ring r's; on failure it
// closes ring.
func (r *ioRing) attach(ring *uring.Ring) error {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		ring.Close()
		return err
	}
	e := int32(efd)
	if _, _, errno := syscall.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(ring.FD), uring.RegisterEventFD, uintptr(unsafe.Pointer(&e)), 1, 0, 0); errno != 0 {
		syscall.Close(efd)
		ring.Close()
		return errno
	}
	r.ring, r.ev = ring, os.NewFile(uintptr(efd), "eventfd")
	r.waiting = make(map[uint64]chan int32)
	return nil
}

// release closes the ring and its eventfd (r.mu held, nothing in flight).
func (r *ioRing) release() {
	_ = r.ev.Close()
	r.ring.Close()
	r.ring, r.ev = nil, nil
}

// close releases the ring now, or when its last operation completes;
// later ones are plain system calls.
func (r *ioRing) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.ring != nil && !r.reaping {
		r.release()
	}
}

// sync fsyncs f, through the ring when it takes the fsync, else (or for
// a nil r) with f.Sync. Errors are f.Sync's: *fs.PathError "sync NAME"
// wrapping the errno.
func (r *ioRing) sync(f *os.File) error {
	if r == nil {
		return f.Sync()
	}
	var res int32
	viaRing := false
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { res, viaRing = r.run(uring.SQE{Opcode: uring.OpFsync, FD: int32(fd)}) })
	}
	if viaRing && res == -int32(syscall.EINTR) {
		// fsync(2) is retried on EINTR (os.File.Sync): so is this one.
		viaRing = false
	}
	if viaRing && r.unrun(res) {
		viaRing = false
	}
	var err error
	switch {
	case !viaRing:
		err = f.Sync()
	case res < 0:
		err = &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.Errno(-res)}
	}
	if r.onSync != nil {
		r.onSync(f.Name(), viaRing)
	}
	return err
}

// unrun reports whether res is the result of an operation the kernel
// cancelled unrun (ECANCELED): it cancels one queued for an io-wq worker
// it cannot start (a pids cgroup or RLIMIT_NPROC at its limit) or whose
// submitting thread exited; the plain system call needs no worker. The
// ring is then given up: each operation through it would first wait for
// the kernel's retries of the worker (~50 ms).
func (r *ioRing) unrun(res int32) bool {
	if res != -int32(syscall.ECANCELED) {
		return false
	}
	r.close()
	return true
}

// writeAt writes b at off in f as f.WriteAt does, with its errors
// (*fs.PathError "write NAME" wrapping the errno), and returns how many
// bytes it wrote (f.WriteAt's count is 0 when a write after a short one
// fails; the direct writer ignores it), each part through the
// ring when it takes it, the rest (or all, for a nil r) with f.WriteAt: a
// short write goes on from where it stopped, and a write the ring cannot
// finish (not taken, EINTR, EAGAIN, ECANCELED, nothing written) is left
// to pwrite(2), which reports what the file system says.
func (r *ioRing) writeAt(f *os.File, b []byte, off int64) (int, error) {
	if r == nil {
		return f.WriteAt(b, off)
	}
	done, viaRing := 0, false
	var err error
	rc, cerr := f.SyscallConn()
	for cerr == nil && done < len(b) {
		var res int32
		ok := false
		p := b[done:min(len(b), done+maxRingWrite)]
		_ = rc.Control(func(fd uintptr) { res, ok = r.write(int(fd), p, off+int64(done)) })
		if !ok || res == 0 || res == -int32(syscall.EINTR) || res == -int32(syscall.EAGAIN) || r.unrun(res) {
			break
		}
		viaRing = true
		if res < 0 {
			err = &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.Errno(-res)}
			break
		}
		done += int(res)
	}
	if err == nil && done < len(b) {
		var n int
		n, err = f.WriteAt(b[done:], off+int64(done))
		done += n
	}
	if r.onWrite != nil {
		r.onWrite(f.Name(), viaRing)
	}
	return done, err
}

// write writes p (not empty) at off in fd through the ring, waiting for
// it locked to its thread (see ioRing); ok is false when the ring did not
// take it.
func (r *ioRing) write(fd int, p []byte, off int64) (res int32, ok bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	res, ok = r.run(uring.SQE{Opcode: uring.OpWrite, FD: int32(fd), Off: uint64(off),
		Addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(p)))), Len: uint32(len(p))})
	runtime.KeepAlive(p) // the kernel reads it until the completion
	return res, ok
}

// run submits s (its user data set here) and waits, parked, for its
// result; ok is false when the ring did not take it (the caller makes the
// system call itself).
func (r *ioRing) run(s uring.SQE) (res int32, ok bool) {
	r.mu.Lock()
	if !r.tried && !r.closed {
		r.tried = true
		_ = r.start() // a ring that cannot be made leaves r.ring nil
	}
	if r.ring == nil || r.closed || len(r.waiting) >= int(r.ring.Entries) {
		r.mu.Unlock()
		return 0, false
	}
	tail := atomic.LoadUint32(r.ring.SQTail)
	r.next++
	id := r.next
	s.UserData = id
	*r.ring.SQE(tail) = s
	atomic.StoreUint32(r.ring.SQTail, tail+1)
	n, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.ring.FD), 1, 0, 0, 0, 0)
	if errno != 0 || n != 1 {
		// Not taken: withdraw it, so that no later submission
		// carries it (the kernel has not moved the queue's head).
		atomic.StoreUint32(r.ring.SQTail, tail)
		r.mu.Unlock()
		return 0, false
	}
	ch := make(chan int32, 1)
	r.waiting[id] = ch
	if !r.reaping {
		r.reaping = true
		go r.reap()
	}
	r.mu.Unlock()
	return <-ch, true
}

// reap hands completions to their waiters while any operation is in flight,
// parked on the eventfd between them, 1 ms at most (reapPoll). The kernel
// adds to the eventfd after posting a completion, so one posted after the
// queue was looked at leaves the count above zero: no wake-up is lost, a
// stale count costs one more look. If reading the eventfd fails, reap
// waits in io_uring_enter.
func (r *ioRing) reap() {
	var buf [8]byte
	poll := true
	for {
		r.mu.Lock()
		ring := r.ring
		head, tail := atomic.LoadUint32(ring.CQHead), atomic.LoadUint32(ring.CQTail)
		for ; head != tail; head++ {
			c := ring.CQE(head)
			if ch, ok := r.waiting[c.UserData]; ok {
				delete(r.waiting, c.UserData)
				ch <- c.Res
			}
		}
		atomic.StoreUint32(ring.CQHead, head)
		if len(r.waiting) == 0 {
			r.reaping = false
			if r.closed {
				r.release()
			}
			r.mu.Unlock()
			return
		}
		ev := r.ev
		r.mu.Unlock()
		if poll {
			// The deadline's timer, not the poller, wakes a reaper
			// whose Ps are all busy: the runtime looks at the poller
			// only when a P has nothing else to run (or sysmon's 10 ms),
			// at its timers whenever it schedules.
			_ = ev.SetReadDeadline(time.Now().Add(reapPoll))
			_, err := ev.Read(buf[:])
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			poll = false
		}
		// min_complete 1: every completion posted was reaped above.
		_, _, errno := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(ring.FD), 0, 1, uring.EnterGetEvents, 0, 0)
		if errno != 0 && errno != syscall.EINTR {
			runtime.Gosched()
		}
	}
}
