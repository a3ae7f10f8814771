package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"memento/chunk"
	"memento/index"
	"memento/repo"
)

// A small file (below directMinSize, through the page cache) is restored on
// its worker's goroutine alone: its chunks are read without read-ahead
// goroutines (a file of a few KiB is one run), gathered and verified in one
// buffer, and written with one pwrite per run of data blocks; its owner,
// mode and times are set through the open descriptor, and no ftruncate is
// needed unless it ends in a hole. fileWriter, for large files, pads its
// last block for O_DIRECT and writes on a goroutine of its own; on a tree of
// 11,478 source files those per-file costs (a goroutine and a channel per
// write, a read-ahead pipeline per file, ftruncate, path lookups for chown
// and utimensat, fcntl) were most of what memento spent beyond restic.
// What is written is the same: the bytes verified against the snapshot's
// BLAKE3 before anything is written, whole blocks of zeros of zero chunks
// left as holes, the staging directory synced as a whole before the swap.

// writeSmallFile is writeFile for a file below directMinSize; with endToEnd
// its chunk IDs are not checked and a BLAKE3 mismatch is errUnchecked
// (nothing is written then).
func (rs *restorer) writeSmallFile(ctx context.Context, n *repo.Node, p, rel string, locs map[chunk.ID]index.Location, endToEnd bool) error {
	what := func(format string, args ...any) error {
		return repo.Corruptf("snapshot "+rs.sn.ShortID(), "file %s: "+format, append([]any{rel}, args...)...)
	}
	mem := chunk.Buffer(int(n.Size))
	defer chunk.PutBuffer(mem)
	buf := *mem
	// zeroRuns are the file's ranges of zero chunks (adjacent ones
	// merged): the blocks that lie wholly within one are not written.
	var zeroRuns [][2]int64
	var h chunk.Hasher // the file's BLAKE3, sixteen chunks at a time with AVX-512
	defer h.Reset()
	err := rs.fetchChunksAhead(ctx, n.Content, locs, 0, endToEnd, func(data []byte, zero bool) error {
		h.Write(data)
		rs.opts.Progress.Bytes.Add(int64(len(data)))
		off := int64(len(buf))
		if uint64(off)+uint64(len(data)) > n.Size {
			return what("chunks hold more than the %d bytes the tree says", n.Size)
		}
		buf = append(buf, data...)
		if zero || chunk.IsZero(data) {
			if k := len(zeroRuns); k > 0 && zeroRuns[k-1][1] == off {
				zeroRuns[k-1][1] = int64(len(buf))
			} else {
				zeroRuns = append(zeroRuns, [2]int64{off, int64(len(buf))})
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, repo.ErrCorrupt) {
			return fmt.Errorf("snapshot %s: file %s: %w", rs.sn.ShortID(), rel, err)
		}
		return err
	}
	if uint64(len(buf)) != n.Size {
		return what("chunks hold %d bytes, the tree says %d", len(buf), n.Size)
	}
	sum := repo.Hash(h.Sum256())
	if n.BLAKE3 == nil || sum != *n.BLAKE3 {
		if endToEnd {
			rs.opts.Progress.Bytes.Add(-int64(len(buf))) // counted again on the slow path
			return errUnchecked
		}
		return what("content BLAKE3 does not match the snapshot")
	}
	fd, err := unix.Open(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", p, &os.PathError{Op: "open", Path: p, Err: err})
	}
	err = rs.fillSmall(fd, n, p, rel, buf, holeBlocks(zeroRuns, int64(len(buf))))
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("restore %s: %w", p, &os.PathError{Op: "close", Path: p, Err: cerr})
	}
	return err
}

// fillSmall writes buf to the new file fd at p, leaving out the blocks
// holes marks, and gives it n's owner, extended attributes, mode and times.
func (rs *restorer) fillSmall(fd int, n *repo.Node, p, rel string, buf []byte, holes []bool) error {
	fail := func(op string, err error) error {
		return fmt.Errorf("restore %s: %w", p, &os.PathError{Op: op, Path: p, Err: err})
	}
	size := int64(len(buf))
	for off := int64(0); off < size; {
		if holes != nil && holes[off/writeAlign] {
			off += writeAlign
			continue
		}
		end := off + writeAlign
		for end < size && (holes == nil || !holes[end/writeAlign]) {
			end += writeAlign
		}
		end = min(end, size)
		if err := pwriteAll(fd, buf[off:end], off); err != nil {
			return fail("write", err)
		}
		off = end
	}
	if size > 0 && holes != nil && holes[(size-1)/writeAlign] {
		if err := unix.Ftruncate(fd, size); err != nil { // a trailing hole
			return fail("truncate", err)
		}
	}
	// Owner before mode: chown clears the setuid and setgid bits.
	if rs.root() {
		_ = unix.Fchown(fd, int(n.UID), int(n.GID))
	}
	rs.setXattrs(n, p, rel) // after chown, which clears security.capability
	if err := unix.Fchmod(fd, repo.UnixPermBits(n.Mode)); err != nil {
		return fail("chmod", err)
	}
	setTimesFd(fd, n)
	return nil
}

// holeBlocks marks the writeAlign blocks of a file of size bytes that hold
// nothing but bytes of the zero runs (nil: none), as fileWriter leaves them
// unwritten: those wholly within a run, and the last, partial block when a
// run reaches the end of the file.
func holeBlocks(zeroRuns [][2]int64, size int64) []bool {
	var holes []bool
	for _, r := range zeroRuns {
		lo, hi := alignUp(r[0]), r[1]&^(writeAlign-1)
		if r[1] == size {
			hi = alignUp(size)
		}
		for b := lo; b < hi; b += writeAlign {
			if holes == nil {
				holes = make([]bool, alignUp(size)/writeAlign)
			}
			holes[b/writeAlign] = true
		}
	}
	return holes
}

// pwriteAll writes b at off, all of it.
func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		k, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if k == 0 {
			return unix.EIO
		}
		b, off = b[k:], off+int64(k)
	}
	return nil
}

// setTimesFd restores the mtime (atime is set to it too) of the open file
// fd: futimens(3), utimensat(2) with a NULL path, which x/sys/unix does not
// wrap. Like setTimes it is best effort.
func setTimesFd(fd int, n *repo.Node) {
	ts := [2]unix.Timespec{unix.NsecToTimespec(n.MTimeNS), unix.NsecToTimespec(n.MTimeNS)}
	_, _, _ = unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
}
