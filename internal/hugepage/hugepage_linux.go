package hugepage

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Size is the huge page size advised for: 2 MiB, the x86-64 and arm64
// (4 KiB base pages) PMD size.
const Size = 2 << 20

// Advise marks the 2 MiB-aligned pages that lie wholly inside b for
// transparent huge pages (MADV_HUGEPAGE). Call it on a buffer of at least
// MinSize bytes right after allocating it, before writing to it: pages
// already touched keep their 4 KiB pages. A Go heap buffer stays an
// ordinary Go heap buffer; the advice only outlives it as a property of
// the address range, which the runtime may reuse for other large objects.
func Advise(b []byte) {
	if len(b) < MinSize {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (p + Size - 1) &^ (Size - 1)
	end := (p + uintptr(len(b))) &^ (Size - 1)
	if beg >= end {
		return
	}
	_ = unix.Madvise(b[beg-p:end-p], unix.MADV_HUGEPAGE)
}
