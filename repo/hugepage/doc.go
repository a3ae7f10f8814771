// Package hugepage asks the kernel to back large, long-lived buffers with
// transparent huge pages.
//
// A first touch of fresh anonymous memory costs one page fault per 4 KiB
// page. On the virtual machines memento is benchmarked on that fault is
// expensive (~10 µs of system time and ~25 µs of wall time each, measured:
// 256 MiB touched in 1.6-2.2 s with 4 KiB pages, 22-36 ms with 2 MiB
// pages), and a first backup touches ~85,000 fresh pages: its 16 MiB pack
// buffers, its multi-MiB chunk and compression buffers, and whatever the
// Go runtime returned to the kernel under the soft memory limit and takes
// back. Linux's default transparent huge page mode is "madvise": only
// ranges advised with MADV_HUGEPAGE get huge pages, and the Go runtime no
// longer advises its heap. Advise does, for one long-lived buffer whose
// end of life the caller knows (see Unadvise): the pack buffers, ~33,000 of
// those faults.
//
// It is advice: memory use does not change for a buffer that is written
// whole (a pack), and on other systems, other modes or failure it does
// nothing.
package hugepage
