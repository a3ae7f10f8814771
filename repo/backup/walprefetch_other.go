//go:build !linux

package backup

import "os"

// willNeed is a no-op where the kernel takes no read-ahead hint through
// x/sys: the replay then reads the WAL as before.
func willNeed(*os.File, int64, int64) bool { return false }
