//go:build !linux

package engram

import "os"

// prefetchPages does nothing where posix_fadvise is not offered.
func prefetchPages(*os.File, []int64, int64) {}
