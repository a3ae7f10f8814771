package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/trace"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/directio"
	"memento/repo/pitr"
)

// directMinSize is the smallest file written with O_DIRECT: a direct write
// waits for the device, which a small file's single write through the page
// cache does not, and its page cache cost is small.
const directMinSize = directio.MinSize

// restoreFile writes one file: its chunks are fetched in runs and verified
// ahead in parallel (fetchChunks) and written in order while the whole-file
// BLAKE3 is computed; whole blocks of zeros become holes. The file is only
// kept if its size and digest match the snapshot. A file below
// directMinSize is gathered and verified before it is created (small.go).
func (rs *restorer) restoreFile(ctx context.Context, n *repo.Node, p, rel string) error {
	region := trace.StartRegion(ctx, "restore file") // MEMENTO_TRACE: which file is written when
	if trace.IsEnabled() {
		trace.Logf(ctx, "restore file", "%s %s %d", rs.sn.Space, rel, n.Size)
	}
	err := rs.writeFile(ctx, n, p, rel)
	region.End()
	if err != nil && rs.skippable(err) {
		// --skip-damaged: leave the file out, say so, go on.
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("restore %s: %w", p, rerr)
		}
		rs.noteDamaged("file", rel, n.Size, err)
		return nil
	}
	return err
}

// writeFile is restoreFile without the damage skipping.
func (rs *restorer) writeFile(ctx context.Context, n *repo.Node, p, rel string) error {
	what := func(format string, args ...any) error {
		return repo.Corruptf("snapshot "+rs.sn.ShortID(), "file %s: "+format, append([]any{rel}, args...)...)
	}
	locs, err := rs.r.Locate(rs.sn.Space, n.Content)
	if err != nil {
		return fmt.Errorf("snapshot %s: file %s: %w", rs.sn.ShortID(), rel, err)
	}
	if n.Size < directMinSize {
		return rs.writeSmallFile(ctx, n, p, rel, locs)
	}
	w, err := createFileWriter(p, true, int64(n.Size))
	if err != nil {
		return err
	}
	defer w.close()
	h := blake3.New()
	var off int64
	err = rs.fetchChunks(ctx, n.Content, locs, func(data []byte, zero bool) error {
		h.Write(data)
		off += int64(len(data))
		rs.opts.Progress.Bytes.Add(int64(len(data)))
		if zero || isZero(data) {
			return w.skip(int64(len(data)))
		}
		return w.write(data)
	})
	if err != nil {
		if errors.Is(err, repo.ErrCorrupt) {
			return fmt.Errorf("snapshot %s: file %s: %w", rs.sn.ShortID(), rel, err)
		}
		return err
	}
	if uint64(off) != n.Size {
		return what("chunks hold %d bytes, the tree says %d", off, n.Size)
	}
	var sum repo.Hash
	h.Sum(sum[:0])
	if n.BLAKE3 == nil || sum != *n.BLAKE3 {
		return what("content BLAKE3 does not match the snapshot")
	}
	if err := w.finish(off); err != nil {
		return err
	}
	// Owner before mode: chown clears the setuid and setgid bits.
	setOwner(p, n)
	rs.setXattrs(n, p, rel) // after chown, which clears security.capability
	if err := w.f.Chmod(fs.FileMode(n.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	if err := w.close(); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	setTimes(p, n, false)
	return nil
}

// Fetcher returns the pitr.FetchFunc of memento's planners, bound to r: it
// reads and verifies the chunks ids of the snapshot sn's space (their
// locations locs) as a restore does, a run of pack neighbours per request
// with several runs in flight and a damaged blob read from another copy, and
// calls fn with each in order (the data is only valid during the call).
func Fetcher(r Repository) pitr.FetchFunc {
	return func(ctx context.Context, sn *repo.Snapshot, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func([]byte) error) error {
		rs := &restorer{r: r, sn: sn, opts: RestoreOptions{Progress: &repo.Progress{}, Workers: 1}}
		return rs.fetchOrdered(ctx, ids, locs, fn)
	}
}

// fetchOrdered reads and verifies the chunks ids and calls fn with each in
// order (the data is only valid during the call).
func (rs *restorer) fetchOrdered(ctx context.Context, ids []chunk.ID, locs map[chunk.ID]index.Location, fn func([]byte) error) error {
	return rs.fetchChunks(ctx, ids, locs, func(data []byte, _ bool) error { return fn(data) })
}

// isZero reports whether b holds only zero bytes.
func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
