//go:build linux

package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openFDCount is how many descriptors the process has open.
func openFDCount(t *testing.T) int {
	t.Helper()
	names, err := readDirNames("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(names) - 1 // the listing's own
}

// setFDLimit sets the soft RLIMIT_NOFILE to cur (no higher than it is) and
// returns what sets it back.
func setFDLimit(t *testing.T, cur uint64) (restore func()) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = min(lim.Cur, cur)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
}

// smallFiles writes n files of 100+i bytes under a new directory and
// returns a batch of them (dev: their jobs' device), added to b.
func smallFiles(t *testing.T, b *batchReader, n int, dev uint64) (*smallBatch, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	batch := &smallBatch{}
	want := map[string][]byte{}
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
		data := bytes.Repeat([]byte{byte(i)}, 100+i)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		j := batchJob(p, len(data))
		j.dev = dev
		if taken, _ := b.add(batch, j); !taken {
			t.Fatalf("%s not taken", p)
		}
		want[p] = data
	}
	return batch, want
}

// TestBatchSecondSubmissionFailureClosesEachFileOnce: when the ring's
// second submission (the reads that find the files' ends, and the closes)
// fails, every file the ring did not close is closed by the batch, and
// none the ring closed is closed again: its number may already be another
// file's. The failure is the kernel's answer to io_uring_enter after it
// took none, some (a read taken without its linked close too) or all of
// the submission's ops; files opened right after the kernel's closes (they
// take the numbers just freed) must still be open after the batch. Every
// file is handed to its worker, no descriptor is left open. (Before: the
// batch left every descriptor of the failed submission open, up to 64 per
// failure.)
func TestBatchSecondSubmissionFailureClosesEachFileOnce(t *testing.T) {
	requireRing(t)
	const files = 20 // each read short: 40 ops, a read linked to each close
	for _, take := range []uint32{0, 8, 7, 2 * files} {
		t.Run(fmt.Sprintf("kernel took %d", take), func(t *testing.T) {
			b := newBatchReader()
			defer b.close()
			batch, _ := smallFiles(t, b, files, 0)
			before := openFDCount(t)
			var reused []int
			calls := 0
			b.hook = func(r *fileRing) {
				r.hook = &ringHook{enter: func(r *fileRing, toSubmit, minComplete uint32, sys func(uint32, uint32) (uintptr, syscall.Errno)) (uintptr, syscall.Errno) {
					if toSubmit == 0 {
						return sys(0, minComplete) // a wait (drain)
					}
					if calls++; calls == 1 {
						return sys(toSubmit, minComplete) // the reads
					}
					if toSubmit != 2*files {
						t.Errorf("second submission of %d ops, want %d", toSubmit, 2*files)
					}
					if take > 0 {
						if n, errno := sys(take, take); n != uintptr(take) || errno != 0 {
							t.Errorf("the kernel took %d of %d: %v", n, take, errno)
						}
					}
					for range 8 { // the lowest free numbers: those the ring closed
						fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
						if err != nil {
							t.Fatal(err)
						}
						reused = append(reused, fd)
					}
					return 0, syscall.ENOMEM
				}}
			}
			jobs, err := b.read(context.Background(), batch, nil)
			if err != nil || len(jobs) != files {
				t.Fatalf("read: %v, %d jobs, want none and %d", err, len(jobs), files)
			}
			for _, j := range jobs {
				if j.data != nil {
					t.Fatalf("%s: data from a failed batch", j.path)
				}
			}
			for _, fd := range reused {
				if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
					t.Errorf("descriptor %d, opened after the ring's closes, was closed by the batch: %v", fd, err)
				}
				syscall.Close(fd)
			}
			if after := openFDCount(t); after != before {
				t.Fatalf("%d descriptors open after the failed batch, %d before: %d left open", after, before, after-before)
			}
			if taken, _ := b.add(batch, batchJob("/x", 1)); taken {
				t.Fatal("batches go on after a ring failed")
			}
		})
	}
}

// TestBatchRefusedFileSystem: a file system whose files refuse io_uring
// reads (EINVAL for every read of a batch: here the kernel's answers are
// changed for the files of device 1) has its files read by their workers
// from then on, and only its files: batches of another device's files go
// on. (Before: one batch whose first read failed with EINVAL turned
// batching off for the whole backup.)
func TestBatchRefusedFileSystem(t *testing.T) {
	requireRing(t)
	b := newBatchReader()
	defer b.close()
	var refuse bool
	b.hook = func(r *fileRing) {
		r.hook = &ringHook{reaped: func(ops []ringOp) {
			for i := range ops {
				if refuse && !ops[i].close && len(ops[i].buf) > 1 {
					ops[i].res = -int32(syscall.EINVAL)
				}
			}
		}}
	}
	refused, _ := smallFiles(t, b, 10, 1)
	refuse = true
	jobs, err := b.read(context.Background(), refused, nil)
	refuse = false
	if err != nil || len(jobs) != 10 {
		t.Fatalf("read: %v, %d jobs", err, len(jobs))
	}
	for _, j := range jobs {
		if j.data != nil {
			t.Fatalf("%s: data from a refused read", j.path)
		}
	}
	j := batchJob("/x", 1)
	j.dev = 1
	if taken, full := b.add(&smallBatch{}, j); taken || full {
		t.Fatalf("a file of the refusing file system: taken %v, full %v; want it left to its worker", taken, full)
	}
	other, want := smallFiles(t, b, 10, 2)
	jobs, err = b.read(context.Background(), other, nil)
	if err != nil || len(jobs) != 10 {
		t.Fatalf("read: %v, %d jobs", err, len(jobs))
	}
	for _, j := range jobs {
		if !bytes.Equal(j.data, want[j.path]) || j.data == nil {
			t.Fatalf("%s: %d bytes, want %d read by the batch", j.path, len(j.data), len(want[j.path]))
		}
		j.release()
	}
}

// TestBatchFDs: the files a batch holds at once at a process's descriptor
// limit (the soft limit, which Go raises to the hard one).
func TestBatchFDs(t *testing.T) {
	for _, c := range []struct {
		limit, open uint64
		want        int
	}{{1 << 20, 10, batchFiles}, {20000, 100, batchFiles}, {1024, 10, batchFiles}, {512, 10, 38}, {256, 10, 10}, {256, 120, 0}, {128, 10, 0}, {64, 10, 0}} {
		if got := batchFDs(c.limit, c.open); got != c.want {
			t.Errorf("limit %d, %d open: %d files a batch, want %d", c.limit, c.open, got, c.want)
		}
	}
}

// TestWorkerOpenWaitsForBatchDescriptors: a worker's open that finds no
// descriptor left while a batch holds its files open (here a batch whose
// read of a FUSE file is held in the kernel, the process's limit just
// above what is open) is not reported as "too many open files": it waits
// until the batch has closed its files, no batch opening more meanwhile,
// and opens the file then.
func TestWorkerOpenWaitsForBatchDescriptors(t *testing.T) {
	requireRing(t)
	heldPath, held := mountHeld(t)
	release := held.hold()
	defer release()
	b := newBatchReader()
	defer b.close()
	batch, _ := smallFiles(t, b, 6, 0)
	if taken, _ := b.add(batch, batchJob(heldPath, 1)); !taken {
		t.Fatal("held file not taken")
	}
	other, _ := smallFiles(t, b, 1, 0)
	path := other.jobs[0].path
	defer setFDLimit(t, uint64(openFDCount(t)+64))()
	// poll waits for cond, for a minute at most (a defect, not a speed:
	// each step takes microseconds).
	poll := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; !cond(); i++ {
			if i == 60000 {
				t.Fatalf("no %s after a minute", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	type result struct {
		jobs []smallJob
		err  error
	}
	batchDone := make(chan result, 1)
	go func() {
		jobs, err := b.read(context.Background(), batch, nil)
		batchDone <- result{jobs, err}
	}()
	poll("read of the held file", func() bool { return held.reads.Load() > 0 }) // every file of the batch open
	var filler []int                                                            // then every descriptor left
	defer func() {
		for _, fd := range filler {
			syscall.Close(fd)
		}
	}()
	filler = openUntilEMFILE(t, filler)
	opened := make(chan result, 1)
	go func() {
		fd, err := b.open(path)
		if err == nil {
			syscall.Close(fd)
		}
		opened <- result{err: err}
	}()
	poll("worker waiting", func() bool {
		select {
		case r := <-opened:
			t.Fatalf("open while the batch holds its descriptors returned %v, want it to wait", r.err)
		default:
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.waiting == 1
	})
	if jobs, err := b.read(context.Background(), other, nil); err != nil || len(jobs) != 1 || jobs[0].data != nil {
		t.Fatalf("a batch while a worker waits: %v, %d jobs; want its file handed over unread", err, len(jobs))
	}
	release()
	r := <-batchDone
	if r.err != nil || len(r.jobs) != 7 {
		t.Fatalf("batch: %v, %d jobs", r.err, len(r.jobs))
	}
	for _, j := range r.jobs {
		j.release()
	}
	if r := <-opened; r.err != nil {
		t.Fatalf("open once the batch closed its files: %v", r.err)
	}
}
