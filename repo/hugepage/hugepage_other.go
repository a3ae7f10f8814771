//go:build !linux

package hugepage

// Size is the huge page size advised for on Linux.
const Size = 2 << 20

// Advise does nothing on systems without Linux's MADV_HUGEPAGE.
func Advise([]byte) {}

// Unadvise does nothing on systems without Linux's MADV_HUGEPAGE.
func Unadvise([]byte) {}

// Advised reports false: nothing is advised on systems without Linux's
// MADV_HUGEPAGE.
func Advised([]byte) (advised, any bool, err error) { return false, false, nil }

// AdvisedAt reports false: nothing is advised on systems without Linux's
// MADV_HUGEPAGE.
func AdvisedAt(uintptr) (bool, error) { return false, nil }

// Mode returns "": no transparent huge pages outside Linux.
func Mode() string { return "" }
