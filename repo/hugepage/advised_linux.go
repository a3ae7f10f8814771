package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"
)

// Advised reports whether every 2 MiB-aligned page wholly inside b is in a
// mapping advised for huge pages (VmFlags "hg" in /proc/self/smaps), and
// whether b holds such a page at all. For tests: it reads smaps.
func Advised(b []byte) (advised, any bool, err error) {
	if len(b) == 0 {
		return false, false, nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (p + Size - 1) &^ (Size - 1)
	end := (p + uintptr(len(b))) &^ (Size - 1)
	if beg >= end {
		return false, false, nil
	}
	for q := beg; q < end; q += Size {
		f, err := vmFlags(q)
		if err != nil {
			return false, true, err
		}
		if !slices.Contains(f, "hg") {
			return false, true, nil
		}
	}
	return true, true, nil
}

// AdvisedAt reports whether the mapping that holds address p is advised for
// huge pages (VmFlags "hg" in /proc/self/smaps). For tests: it reads smaps.
func AdvisedAt(p uintptr) (bool, error) {
	f, err := vmFlags(p)
	return slices.Contains(f, "hg"), err
}

// vmFlags returns the VmFlags of the mapping of /proc/self/smaps that holds
// address p.
func vmFlags(p uintptr) ([]string, error) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if sp := strings.IndexByte(line, ' '); sp > 0 && strings.Contains(line[:sp], "-") {
			var lo, hi uintptr
			if n, _ := fmt.Sscanf(line[:sp], "%x-%x", &lo, &hi); n == 2 {
				in = lo <= p && p < hi
				continue
			}
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.Fields(strings.TrimPrefix(line, "VmFlags:")), nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("hugepage: no mapping holds %#x", p)
}
