package restore

import (
	"fmt"
	"os"

	"memento/repo/directio"
)

// Restored files are written front to back in large writes of aligned
// windows (windowWriter, window.go), with O_DIRECT where the filesystem takes it. Going around
// the page cache matters on a restore: the data is not read again soon, and
// on a VM the page cache's bookkeeping and the writeback at the end cost
// more CPU than the decryption (writing 1 GiB buffered and syncing costs
// about 3 s of system time on the benchmark machine, with O_DIRECT 0.3 s).
// Every write is a whole number of aligned blocks; the last block is padded
// with zeros and the file truncated to its size at the end. Runs of whole
// zero blocks are skipped, so holes stay holes. Where O_DIRECT is refused
// (tmpfs, some network filesystems) the same writes go through the page
// cache.

const (
	writeAlign   = directio.Align // O_DIRECT alignment of offsets, lengths and memory
	writeBufSize = 4 << 20        // bytes per write
)

// pwriteBlocks writes b at off of f, a file being restored to path, with
// O_DIRECT while *direct, and turns O_DIRECT off (clearing *direct) when the
// file system refuses the write with it.
func pwriteBlocks(f *os.File, direct *bool, path string, b []byte, off int64) error {
	n, err := f.WriteAt(b, off)
	if err != nil && *direct && n == 0 && directio.Refused(err) {
		// Some filesystems accept O_DIRECT at open and refuse the writes.
		if err = directio.Disable(f); err == nil {
			*direct = false
			_, err = f.WriteAt(b, off)
		}
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", path, err)
	}
	return nil
}

func alignUp(n int64) int64 { return (n + writeAlign - 1) &^ (writeAlign - 1) }
