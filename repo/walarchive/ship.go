package walarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/repo"
	"memento/walreplay"
)

// shipSegment archives what is new in one segment and returns its new record
// (nil when the archive already has all of it).
func (w *walRun) shipSegment(ctx context.Context, seg walreplay.SegmentInfo, sealed bool) (*WALSegmentRecord, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // rotated away since the listing: nothing left to ship
		}
		return nil, fmt.Errorf("segment %s: %w", seg.Name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", seg.Name, err)
	}
	size := fi.Size()
	if size < walreplay.HeaderSize {
		if sealed && size > 0 {
			return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: 0, Seq: seg.FirstSeq,
				Reason: fmt.Sprintf("sealed segment of %d bytes ends in a torn tail", size), Err: walreplay.ErrCorrupt}
		}
		return nil, nil // the open segment has no complete entry yet
	}
	var hb [walreplay.HeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return nil, fmt.Errorf("segment %s: %w", seg.Name, err)
	}
	h, reason := walreplay.DecodeHeader(hb[:])
	if reason != "" {
		return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: 0, Seq: seg.FirstSeq, Reason: reason, Err: walreplay.ErrCorrupt}
	}
	if h.Flags&walreplay.FlagCompacted != 0 {
		return w.shipCompacted(ctx, f, seg, size)
	}
	rec := w.sa.pos.Record(seg.Name, false)
	if rec != nil {
		if missing := w.unknownChunk(rec); missing != nil {
			if size < rec.Size {
				return nil, fmt.Errorf("segment %s: its archived record (bytes 0..%d, seq %d..%d) names chunk %s, which is in no pack of the repository, and the segment now has only %d bytes: the record cannot be repaired from it (pitr ranges ends before it): %w%s",
					seg.Name, rec.Size, rec.FirstSeq, rec.LastSeq, missing.Short(), size, walreplay.ErrCorrupt, w.hint())
			}
			// Safe only if the segment still holds the archived bytes
			// (their BLAKE3 is in the record): then they are cut again
			// from the segment's start, the same bytes give the same
			// chunks, and the record is readable again once they are
			// stored (the new record names them too).
			w.sa.open = nil
			if _, err := w.prefixHash(f, fi, seg.Name, rec); err != nil {
				return nil, err
			}
			w.a.r.Logger().Warn("archived WAL segment names a chunk in no pack of the repository; archiving the segment again",
				"space", w.space, "segment", seg.Name, "chunk", missing.Short())
			w.sa.open = nil
			return w.shipTail(ctx, f, fi, seg, size, sealed, nil)
		}
	}
	switch {
	case rec == nil:
	case size < rec.Size:
		return nil, fmt.Errorf("segment %s is %d bytes but %d bytes of it were archived (bytes %d..%d are gone): it was truncated or rewritten in place, not by a memento restore: %w%s",
			seg.Name, size, rec.Size, size, rec.Size, walreplay.ErrCorrupt, w.hint())
	case size == rec.Size:
		if sealed && !rec.Sealed && rec.Pieces > 0 {
			break // shipTail joins the pieces into the segment's last chunk
		}
		if sealed && !rec.Sealed {
			c := *rec
			c.Sealed = true
			return &c, nil
		}
		return nil, nil
	}
	return w.shipTail(ctx, f, fi, seg, size, sealed, rec)
}

// shipTail validates the entries of seg from the archived size on, and stores
// the bytes through the last complete entry.
func (w *walRun) shipTail(ctx context.Context, f *os.File, fi os.FileInfo, seg walreplay.SegmentInfo, size int64, sealed bool, rec *WALSegmentRecord) (*WALSegmentRecord, error) {
	var from int64
	next, lastTS := seg.FirstSeq, int64(math.MinInt64)
	out := WALSegmentRecord{Name: seg.Name, Sealed: sealed}
	if rec != nil {
		out = *rec
		out.Sealed = sealed
		from, next, lastTS = rec.Size, rec.LastSeq+1, rec.LastTS
	}
	// Pass 1: validate the new entries and find where the complete ones end.
	sr := walreplay.NewSegmentReader(io.NewSectionReader(f, from, size-from), seg.Name)
	var n int64
	for k := 0; ; k++ {
		if k&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		e, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var ce *walreplay.CorruptError
			if errors.As(err, &ce) {
				c := *ce
				c.Offset += from
				if errors.Is(err, walreplay.ErrTornTail) {
					if !sealed {
						w.res.TornTail = fmt.Sprintf("segment %s offset %d (seq %d)", seg.Name, c.Offset, next)
						break
					}
					c.Err, c.Reason = walreplay.ErrCorrupt, "sealed segment ends in a "+c.Reason
				}
				return nil, &c
			}
			return nil, err
		}
		off := from + sr.Offset()
		switch {
		case e.Compacted():
			return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: off, Seq: e.Seq, Reason: "COMPACTED entry in an ordinary segment", Err: walreplay.ErrCorrupt}
		case e.Seq != next && rec == nil && n == 0:
			return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: off, Seq: e.Seq,
				Reason: fmt.Sprintf("segment name says first sequence %d but first entry has %d", seg.FirstSeq, e.Seq), Err: walreplay.ErrCorrupt}
		case e.Seq != next:
			if e.Seq > next {
				return nil, fmt.Errorf("%w: segment %s offset %d: sequences %d..%d are missing (seq %d follows %d)", ErrWALGap, seg.Name, off, next, e.Seq-1, e.Seq, next-1)
			}
			return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: off, Seq: e.Seq, Reason: fmt.Sprintf("sequence repeat: expected %d", next), Err: walreplay.ErrGap}
		case e.TimestampNS < lastTS:
			return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: off, Seq: e.Seq,
				Reason: fmt.Sprintf("timestamp goes backwards: %d after %d", e.TimestampNS, lastTS), Err: walreplay.ErrCorrupt}
		}
		if out.Entries == 0 {
			out.FirstSeq, out.FirstTS = e.Seq, e.TimestampNS
		}
		out.Entries++
		out.LastSeq, out.LastTS = e.Seq, e.TimestampNS
		next, lastTS = e.Seq+1, e.TimestampNS
		n++
	}
	end := from + sr.End()
	if n == 0 && (rec == nil || !sealed || rec.Sealed) {
		return nil, nil
	}
	if n == 0 && rec.Pieces == 0 {
		return &out, nil // sealed now: nothing to store
	}
	// Pass 2: store the bytes from the start of the record's tail (its
	// pieces and last chunk: every boundary before it is final) to end.
	var (
		resume int64
		keep   []WALChunk // the chunks before the tail, kept as they are
		old    []WALChunk // the tail
	)
	if rec != nil {
		var i int
		i, resume = rec.TailStart()
		keep, old = rec.Chunks[:i], rec.Chunks[i:]
	}
	hasher, err := w.prefixHash(f, fi, seg.Name, rec)
	if err != nil {
		return nil, err
	}
	w.sa.open = nil // the hasher is about to change; kept again only on success
	params := w.a.r.Config().ParamSet().For("wal/" + seg.Name)
	var tailChunks []WALChunk
	var pieces int
	if rec != nil && !sealed && end-resume <= int64(params.Min) {
		// No chunk is cut before Min bytes: the tail gets no boundary,
		// and only the new bytes are stored (with the pieces they join).
		tailChunks, pieces, err = w.storePiece(f, seg.Name, hasher, old, resume, from, end)
	} else {
		tailChunks, pieces, err = w.recut(ctx, f, seg.Name, hasher, old, resume, from, end, rec != nil && !sealed)
	}
	if err != nil {
		return nil, err
	}
	out.Chunks = append(append([]WALChunk(nil), keep...), tailChunks...)
	out.Pieces = pieces
	out.Size = end
	hasher.Sum(out.BLAKE3[:0])
	if sealed {
		w.sa.open = nil
	} else {
		w.sa.open = &segHash{name: seg.Name, ino: inode(fi), size: end, h: hasher}
	}
	w.res.NewBytes += end - from
	return &out, nil
}

// storePiece stores bytes [from, end) of the segment, which do not reach a
// chunk boundary, as a new piece of its tail old (the record's pieces and
// last chunk, from offset resume to from), joined with the smallest pieces
// (pieceMerge), whose bytes are read again and must still match their IDs.
// It extends hasher with the new bytes and returns the new tail and its
// number of pieces.
func (w *walRun) storePiece(f *os.File, name string, hasher *blake3.Hasher, old []WALChunk, resume, from, end int64) ([]WALChunk, int, error) {
	reuse, at := joinPlan(old, end-from)
	start := resume + at
	buf := chunk.Buffer(int(end - start))
	defer chunk.PutBuffer(buf)
	b := (*buf)[:end-start]
	if _, err := f.ReadAt(b, start); err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", name, err)
	}
	w.res.ReadBytes += end - start
	hasher.Write(b[from-start:])
	return w.joinPiece(name, old, reuse, b, start)
}

// joinPiece stores b, the segment's bytes from offset off to its end, as
// the new last piece of the tail old, whose chunks from reuse on b starts
// with (read again: they must still match their IDs), and returns the new
// tail and its number of pieces.
func (w *walRun) joinPiece(name string, old []WALChunk, reuse int, b []byte, off int64) ([]WALChunk, int, error) {
	if err := w.checkOld(name, old[reuse:], b, off); err != nil {
		return nil, 0, err
	}
	piece, err := w.storeBytes(b)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", name, err)
	}
	return append(append([]WALChunk(nil), old[:reuse]...), piece), reuse, nil
}

// recut chunks the segment's bytes [resume, end) (resume: the start of its
// tail old, empty for a segment not archived yet) and stores the chunks.
// The tail's bytes, up to from, are read again and must match old. The last
// chunk, cut by end rather than by a boundary, is stored whole unless
// pieces is set and no boundary was found: then storePiece stores only the
// new bytes. It extends hasher with bytes [from, end) and returns the new
// tail and its number of pieces.
func (w *walRun) recut(ctx context.Context, f *os.File, name string, hasher *blake3.Hasher, old []WALChunk, resume, from, end int64, pieces bool) ([]WALChunk, int, error) {
	tail := &tailHasher{skip: from - resume, h: hasher, check: make([]byte, 0, from-resume)}
	chunks, last, err := w.storeStream(ctx, io.TeeReader(io.NewSectionReader(f, resume, end-resume), tail), "wal/"+name, true)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", name, err)
	}
	if last == nil || int64(len(tail.check)) != from-resume {
		if last != nil {
			chunk.PutBuffer(last)
		}
		return nil, 0, fmt.Errorf("segment %s: read %d bytes at offset %d, expected %d: %w", name, len(tail.check), resume, from-resume, io.ErrUnexpectedEOF)
	}
	defer chunk.PutBuffer(last)
	w.res.ReadBytes += end - resume
	if pieces && len(chunks) == 0 {
		// No boundary after all (a content-defined one may come late):
		// the same pieces as storePiece, from the bytes read.
		// last holds bytes [resume, end), the tail's old bytes first.
		reuse, start := joinPlan(old, end-from)
		return w.joinPiece(name, old, reuse, (*last)[start:], resume+start)
	}
	// The tail's bytes are in the new chunks: they must not have changed.
	if err := w.checkOld(name, old, tail.check, resume); err != nil {
		return nil, 0, err
	}
	c, err := w.storeBytes(*last)
	if err != nil {
		return nil, 0, fmt.Errorf("segment %s: %w", name, err)
	}
	return append(chunks, c), 0, nil
}

// checkOld checks that b, the segment's bytes from offset off, begins with
// the bytes of the archived chunks old (stored again by this run: they must
// not have changed since).
func (w *walRun) checkOld(name string, old []WALChunk, b []byte, off int64) error {
	var at int64
	for _, c := range old {
		if at+int64(c.Size) > int64(len(b)) || w.key.Sum(b[at:at+int64(c.Size)]) != c.ID {
			return fmt.Errorf("segment %s: the %d bytes at offset %d differ from the archived chunk %s: the segment was rewritten below its archived size: %w%s",
				name, c.Size, off+at, c.ID.Short(), walreplay.ErrCorrupt, w.hint())
		}
		at += int64(c.Size)
	}
	return nil
}

// joinPlan returns how many chunks of the tail old a run appending n bytes
// keeps as they are (pieceMerge joins the others with the new bytes) and
// where, relative to the tail's start, the new piece starts.
func joinPlan(old []WALChunk, n int64) (reuse int, at int64) {
	sizes := make([]int64, len(old))
	for i, c := range old {
		sizes[i] = int64(c.Size)
	}
	reuse = len(old) - pieceMerge(sizes, n)
	for _, c := range old[:reuse] {
		at += int64(c.Size)
	}
	return reuse, at
}

// pieceMerge returns how many chunks at the end of a segment's tail (sizes,
// in segment order: its pieces and last chunk) a run that appends n bytes
// without reaching a boundary stores again, joined with the new bytes into
// one new piece. A piece is joined while it is less than twice as large as
// what it would be joined with, so the pieces of a tail at least halve from
// one to the next: a tail of at most Max bytes has at most log2(Max/n)+1
// pieces (about 20 for 1 MiB chunks and single entries), and each byte is
// stored again about log2 of (the tail size over the append size) / 2 times
// on average (a binary counter) instead of once per run.
func pieceMerge(sizes []int64, n int64) int {
	j := 0
	for j < len(sizes) && sizes[len(sizes)-1-j] < 2*n {
		n += sizes[len(sizes)-1-j]
		j++
	}
	return j
}

// prefixHash returns a BLAKE3 hasher fed with the archived prefix of the
// segment: the one kept from the previous run when it still matches, or one
// computed by reading the prefix, which then must match the record (this is
// where a segment rewritten below its archived size is caught after a restart).
func (w *walRun) prefixHash(f *os.File, fi os.FileInfo, name string, rec *WALSegmentRecord) (*blake3.Hasher, error) {
	if rec == nil {
		return blake3.New(), nil
	}
	if o := w.sa.open; o != nil && o.name == name && o.size == rec.Size && o.ino == inode(fi) {
		return o.h, nil
	}
	h := blake3.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, rec.Size)); err != nil {
		return nil, fmt.Errorf("segment %s: %w", name, err)
	}
	var sum repo.Hash
	h.Sum(sum[:0])
	if sum != rec.BLAKE3 {
		return nil, fmt.Errorf("segment %s: bytes 0..%d differ from what was archived: the segment was rewritten in place, not by a memento restore: %w%s",
			name, rec.Size, walreplay.ErrCorrupt, w.hint())
	}
	return h, nil
}

// tailHasher sees the re-chunked bytes: the first skip bytes (the last
// archived chunk, already in the hash) are collected in check to prove they
// did not change; the rest extends the segment's hash.
type tailHasher struct {
	skip  int64
	check []byte
	h     *blake3.Hasher
}

func (t *tailHasher) Write(p []byte) (int, error) {
	n := len(p)
	if t.skip > 0 {
		k := int(min(int64(len(p)), t.skip))
		if t.check != nil {
			t.check = append(t.check, p[:k]...)
		}
		t.skip -= int64(k)
		p = p[k:]
	}
	t.h.Write(p)
	return n, nil
}

// shipCompacted archives a compacted segment whole, as a compacted record
// beside the ordinary records of the segments it replaced.
func (w *walRun) shipCompacted(ctx context.Context, f *os.File, seg walreplay.SegmentInfo, size int64) (*WALSegmentRecord, error) {
	if rec := w.sa.pos.Record(seg.Name, true); rec != nil && rec.Size == size && w.unknownChunk(rec) == nil {
		return nil, nil
	}
	sum, err := walreplay.VerifySegment(ctx, io.NewSectionReader(f, 0, size), seg.Name)
	if err != nil {
		return nil, err
	}
	if sum.TornTail || sum.Bytes != size {
		return nil, &walreplay.CorruptError{Segment: seg.Name, Offset: sum.Bytes, Seq: sum.LastSeq,
			Reason: "compacted segment ends in a torn tail", Err: walreplay.ErrCorrupt}
	}
	h := blake3.New()
	chunks, _, err := w.storeStream(ctx, io.TeeReader(io.NewSectionReader(f, 0, size), h), "wal/"+seg.Name, false)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", seg.Name, err)
	}
	out := &WALSegmentRecord{Name: seg.Name, FirstSeq: seg.FirstSeq, LastSeq: sum.LastSeq, FirstTS: sum.FirstTS, LastTS: sum.LastTS,
		Entries: sum.Entries, Size: size, Chunks: chunks, Sealed: true, Compacted: true}
	h.Sum(out.BLAKE3[:0])
	w.res.NewBytes += size
	w.res.ReadBytes += size
	return out, nil
}

// unknownChunk returns the first chunk of rec that the repository does not
// hold (not in the known set: no index file places it in a pack that
// exists), or nil.
func (w *walRun) unknownChunk(rec *WALSegmentRecord) *chunk.ID {
	w.sa.knownMu.Lock()
	defer w.sa.knownMu.Unlock()
	for i := range rec.Chunks {
		if _, ok := w.sa.known[rec.Chunks[i].ID]; !ok {
			return &rec.Chunks[i].ID
		}
	}
	return nil
}

// hint tells how to go on after the data dir's WAL was rewritten by
// something other than a memento restore: a new timeline from what is on
// disk (NewTimeline).
func (w *walRun) hint() string {
	return fmt.Sprintf("; if the data dir's WAL is now the database's history, continue with: memento wal archive --new-timeline --space %s --data-dir %s", w.space, w.dataDir)
}
