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

// syncRingEntries bounds the fsyncs in flight through one Backend's ring;
// more wait with a plain fsync.
const syncRingEntries = 64

// syncRing runs a Backend's fsyncs through an io_uring (IORING_OP_FSYNC)
// so that the goroutine waiting for one does not keep its P: a goroutine
// blocked in fsync(2) holds its P until the runtime's sysmon takes it
// back (up to 10 ms later), and the compressors wait meanwhile. The
// kernel runs every fsync of a ring in its io-wq workers and, on a ring
// without DEFER_TASKRUN or IOPOLL, posts the completion itself; the ring
// signals an eventfd registered with it, which one reaper goroutine reads
// through the runtime's poller (parked), handing each completion to the
// goroutine that waits for it on a channel. An fsync through the ring is
// fsync(2) (flags 0): the same durability.
//
// The ring is made at the first fsync. Where it cannot be made (no
// io_uring, no eventfd, registering it fails), when a submission fails,
// the ring is full or the kernel cancels the fsync unrun (ECANCELED,
// which also gives the ring up), the fsync is a plain fsync(2), as it is
// after Close.
type syncRing struct {
	mu      sync.Mutex
	tried   bool // start ran
	closed  bool
	ring    *uring.Ring // nil when not working (not made, failed, closed)
	ev      *os.File    // the registered eventfd, non-blocking (the poller)
	reaping bool        // a reap goroutine runs
	next    uint64      // the last fsync's user data
	waiting map[uint64]chan int32

	// onSync, when set (by tests), is called after each fsync with
	// whether it went through the ring.
	onSync func(name string, viaRing bool)
}

func newSyncRing() *syncRing { return &syncRing{} }

// start makes the ring and its eventfd.
func (r *syncRing) start() error {
	ring, err := uring.Setup(syncRingEntries)
	if err != nil {
		return err
	}
	return r.attach(ring)
}

// attach registers an eventfd with ring and makes ring r's; on failure it
// closes ring.
func (r *syncRing) attach(ring *uring.Ring) error {
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
func (r *syncRing) release() {
	_ = r.ev.Close()
	r.ring.Close()
	r.ring, r.ev = nil, nil
}

// close releases the ring now, or when its last fsync completes; later
// fsyncs are plain ones.
func (r *syncRing) close() {
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
func (r *syncRing) sync(f *os.File) error {
	if r == nil {
		return f.Sync()
	}
	var res int32
	viaRing := false
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { res, viaRing = r.fsync(int(fd)) })
	}
	if viaRing && res == -int32(syscall.EINTR) {
		// fsync(2) is retried on EINTR (os.File.Sync): so is this one.
		viaRing = false
	}
	if viaRing && res == -int32(syscall.ECANCELED) {
		// Not run: the kernel cancels an fsync queued for an io-wq
		// worker it cannot start (a pids cgroup or RLIMIT_NPROC at its
		// limit) or whose submitting thread exited; fsync(2) needs no
		// worker. The ring is given up: each fsync through it would
		// first wait for the kernel's retries of the worker (~50 ms).
		viaRing = false
		r.close()
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

// fsync submits an fsync of fd and waits, parked, for its result; ok is
// false when the ring did not take it (the caller fsyncs fd itself).
func (r *syncRing) fsync(fd int) (res int32, ok bool) {
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
	*r.ring.SQE(tail) = uring.SQE{Opcode: uring.OpFsync, FD: int32(fd), UserData: id}
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

// reap hands completions to their waiters while any fsync is in flight,
// parked on the eventfd between them, 1 ms at most (reapPoll). The kernel
// adds to the eventfd after posting a completion, so one posted after the
// queue was looked at leaves the count above zero: no wake-up is lost, a
// stale count costs one more look. If reading the eventfd fails, reap
// waits in io_uring_enter.
func (r *syncRing) reap() {
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
