package repo

import (
	"runtime"
	"runtime/metrics"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/repo/hugepage"
)

// kdfHeapMax bounds the live heap under which kdfHugePages prepares the
// KDF's memory: in a process with more (the agent, long after its start)
// the collection it forces costs more, and the freed range is less likely
// to be the one argon2id's allocation lands in.
const kdfHeapMax = 32 << 20

// kdfHugePages readies the heap range that argon2id's n bytes of memory
// (KDFParams.MemoryKiB) will take for transparent huge pages, and returns
// what takes that advice back once the key is derived.
//
// argon2id allocates its memory itself and writes it once through in its
// first pass: at the default 19 MiB that is ~4,900 first touches of a 4 KiB
// page, each a page fault that costs ~13 µs on the benchmark VM (the KDF
// took 82-116 ms of one core there, of which 24-27 ms compute when its
// memory was already faulted in: docs/benchmarks.md, issue 18, session
// 14). It is the first thing every command waits for. So: a buffer of that
// size (and two huge pages more) is allocated, untouched, advised for huge
// pages (hugepage.Advise), and freed by a collection (a few ms on the small
// heap of a starting command); the page allocator gives its range, the
// lowest free one that fits, to argon2id's allocation right after, which
// then faults in 2 MiB at a time. Nothing depends on it: if the allocation
// lands elsewhere the KDF faults in its pages as before, and the derived
// key is the same either way. The advice is taken back afterwards (as
// hugepage says: the range is the heap's again), the huge pages already
// faulted in stay until the runtime returns them. Only in the kernel's
// "madvise" mode: with "always" argon2id's memory gets huge pages without
// the advice, with "never" not at all, and either way the forced collection
// would be wasted.
func kdfHugePages(n int) (undo func()) {
	beg, end := kdfAdvise(n)
	return func() { kdfUnadvise(beg, end) }
}

// kdfAdvise is kdfHugePages' first half: it returns the range it advised
// (empty if none).
func kdfAdvise(n int) (beg, end uintptr) {
	if n < hugepage.MinSize || hugepage.Mode() != "madvise" || liveHeap() > kdfHeapMax {
		return 0, 0
	}
	b := make([]byte, n+2*hugepage.Size)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg = (p + hugepage.Size - 1) &^ (hugepage.Size - 1)
	end = (p + uintptr(len(b))) &^ (hugepage.Size - 1)
	hugepage.Advise(b)
	b = nil
	runtime.GC()
	return beg, end
}

// kdfUnadvise takes kdfAdvise's advice back, by address: the buffer is
// gone, and its range is argon2id's (or free).
func kdfUnadvise(beg, end uintptr) {
	if beg < end {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, beg, end-beg, unix.MADV_NOHUGEPAGE)
	}
}

// liveHeap returns the bytes of live and not yet swept heap objects.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
