//go:build linux

package backup

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFileRingEventFD: a ring waits for its completions on an eventfd
// through the runtime's poller (a parked goroutine holds no P), and reads
// the same bytes as one that waits in io_uring_enter: many batches in a
// row, each of reads linked to the closes of their files, whose completions
// may signal the eventfd after the batch is done (a stale count the next
// batch must not take for its own completions).
func TestFileRingEventFD(t *testing.T) {
	requireRing(t)
	dir := t.TempDir()
	const files = 24
	want := make([][]byte, files)
	for i := range files {
		want[i] = bytes.Repeat([]byte{byte(i + 1)}, 1000*i+7)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), want[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newFileRing(16) // fewer entries than ops: run splits them
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.ev == nil {
		t.Fatal("no eventfd registered with the ring: it waits in io_uring_enter, holding its P")
	}
	batch := func(round int) {
		t.Helper()
		ops := make([]ringOp, 0, 2*files)
		for i := range files {
			fd, err := syscall.Open(filepath.Join(dir, fmt.Sprint(i)), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, ringOp{fd: fd, buf: make([]byte, len(want[i])+1), link: true}, ringOp{fd: fd, close: true})
		}
		if err := r.run(ops); err != nil {
			t.Fatalf("round %d (eventfd %v): %v", round, r.ev != nil, err)
		}
		for i := range files {
			rd, cl := ops[2*i], ops[2*i+1]
			if int(rd.res) != len(want[i]) || !bytes.Equal(rd.buf[:len(want[i])], want[i]) || cl.res != 0 {
				t.Fatalf("round %d (eventfd %v) file %d: read %d, close %d; want %d bytes, closed", round, r.ev != nil, i, rd.res, cl.res, len(want[i]))
			}
		}
	}
	for round := range 50 {
		batch(round)
	}
	if r.ev == nil {
		t.Fatal("the eventfd was dropped: a read of it failed")
	}
	r.ev.Close()
	r.ev = nil
	for round := range 5 {
		batch(round)
	}
}
