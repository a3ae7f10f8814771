package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/trace"

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
// ahead in parallel (fetchChunksAhead) and written in order while the whole-file
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

// A file's chunks are read with their keyed chunk-ID check skipped
// (repo.StreamOptions.EndToEnd): the file's BLAKE3, compared with the
// tree's before the file is kept, proves every byte of them, and the AEAD,
// the decompression and the length check still refuse any damage at rest
// (and read the chunk from another copy). That saved a BLAKE3 pass over
// every byte restored, some 18 % of a restore's CPU (docs/benchmarks.md,
// "Issue 18, session 11"). A file whose BLAKE3 then does not match is
// written again from scratch with every chunk's ID checked (the slow path,
// errUnchecked), which reads a wrong chunk from another copy or names it
// in the same error as before; only a file whose chunks all verify and
// still does not match is refused for its BLAKE3.

// errUnchecked is a file's BLAKE3 mismatch on the fast path: it is
// written again with every chunk ID checked.
var errUnchecked = errors.New("content BLAKE3 does not match with chunk IDs unchecked")

// fileWrite is writeLargeFile or writeSmallFile.
type fileWrite func(ctx context.Context, n *repo.Node, p, rel string, locs map[chunk.ID]index.Location, endToEnd bool) error

// writeFile is restoreFile without the damage skipping.
func (rs *restorer) writeFile(ctx context.Context, n *repo.Node, p, rel string) error {
	locs, err := rs.r.Locate(rs.sn.Space, n.Content)
	if err != nil {
		return fmt.Errorf("snapshot %s: file %s: %w", rs.sn.ShortID(), rel, err)
	}
	write := fileWrite(rs.writeLargeFile)
	if n.Size < directMinSize {
		write = rs.writeSmallFile
	}
	err = write(ctx, n, p, rel, locs, true)
	if !errors.Is(err, errUnchecked) {
		return err
	}
	rs.r.Logger().Warn("restore: file does not match its BLAKE3: reading it again with every chunk's ID checked", "snapshot", rs.sn.ShortID(), "file", repo.DisplayRel(rel))
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	return write(ctx, n, p, rel, locs, false)
}

// writeLargeFile is writeFile for a file of directMinSize and more; with
// endToEnd its chunk IDs are not checked and a BLAKE3 mismatch is
// errUnchecked.
func (rs *restorer) writeLargeFile(ctx context.Context, n *repo.Node, p, rel string, locs map[chunk.ID]index.Location, endToEnd bool) error {
	what := func(format string, args ...any) error {
		return repo.Corruptf("snapshot "+rs.sn.ShortID(), "file %s: "+format, append([]any{rel}, args...)...)
	}
	w, err := createFileWriter(p, true, int64(n.Size), rs.mem)
	if err != nil {
		return err
	}
	defer w.close()
	var h chunk.Hasher // the file's BLAKE3, sixteen chunks at a time with AVX-512
	defer h.Reset()
	var off int64
	err = rs.fetchChunksAhead(ctx, n.Content, locs, restoreAhead, endToEnd, func(data []byte, zero bool) error {
		h.Write(data)
		off += int64(len(data))
		rs.opts.Progress.Bytes.Add(int64(len(data)))
		if zero || chunk.IsZero(data) {
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
	sum := repo.Hash(h.Sum256())
	if n.BLAKE3 == nil || sum != *n.BLAKE3 {
		if endToEnd {
			rs.opts.Progress.Bytes.Add(-off) // counted again on the slow path
			return errUnchecked
		}
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
	return rs.fetchChunksAhead(ctx, ids, locs, restoreAhead, false, func(data []byte, _ bool) error { return fn(data) })
}
