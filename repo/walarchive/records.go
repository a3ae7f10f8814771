package walarchive

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"memento/chunk"
	"memento/engram"
	"memento/repo"
)

// WALArchiveVersion is the format of the wal/ metadata files this binary
// writes (docs/repository-format.md, "WAL archive"). Readers refuse newer
// versions with ErrFormat.
const WALArchiveVersion = 1

// KindWALArchive is the associated data of wal/ files, so that no other
// metadata file can pose as one.
const KindWALArchive = "walarchive"

// WALChunk is one chunk of an archived segment: its ID and plaintext size.
// Sizes are kept so that a reader can compute offsets (and resume chunking at
// the last chunk) without asking the index.
type WALChunk struct {
	ID   chunk.ID `json:"id"`
	Size uint32   `json:"size"`
}

// WALSegmentRecord describes the archived prefix of one WAL segment file: its
// first Size bytes, which always end at an entry boundary (the archive never
// holds a torn entry), stored as Chunks (ordinary data blobs of the space).
//
// For an ordinary segment FirstSeq is the sequence of its first entry (equal
// to the one in its name). For a compacted segment FirstSeq is a, the first
// sequence the compacted run covers (its name), and LastSeq is b, the
// sequence of its closing marker.
type WALSegmentRecord struct {
	Name      string     `json:"name"`
	FirstSeq  uint64     `json:"first_seq"`
	LastSeq   uint64     `json:"last_seq"`
	FirstTS   int64      `json:"first_ts"`
	LastTS    int64      `json:"last_ts"`
	Entries   int64      `json:"entries"`
	Size      int64      `json:"size"`
	Chunks    []WALChunk `json:"chunks"`
	BLAKE3    repo.Hash  `json:"blake3"` // plain BLAKE3-256 of bytes [0, Size)
	Sealed    bool       `json:"sealed"` // a newer segment existed when this was archived
	Compacted bool       `json:"compacted"`
	// Pieces counts the chunks before the last one that are pieces: cut
	// where an archive run ended, not at a boundary of the chunker. The
	// last Pieces+1 chunks together are the segment's tail after its last
	// final boundary, which the next run re-cuts from (TailStart). Absent
	// (0) in records written before pieces existed and in every record
	// whose tail is one chunk, as those records were (docs/repository-format.md,
	// "Pieces").
	Pieces int `json:"pieces,omitempty"`
}

// TailStart returns the index of the first chunk of the record's tail (its
// pieces and last chunk) and the offset where it starts: every boundary
// before it is final, so chunking the segment again from there cuts the
// same chunks as chunking it from the start.
func (s *WALSegmentRecord) TailStart() (int, int64) {
	i := len(s.Chunks) - 1 - s.Pieces
	off := s.Size
	for _, c := range s.Chunks[i:] {
		off -= int64(c.Size)
	}
	return i, off
}

// key identifies the slot a record competes for: an ordinary segment and the
// compacted segment later written under the same name are both kept.
func (s *WALSegmentRecord) key() walKey { return walKey{s.Name, s.Compacted} }

type walKey struct {
	name      string
	compacted bool
}

// supersedes reports whether record a should replace b in the same slot: the
// longest record wins (a segment only grows); at equal size a sealed record
// wins over an open one; records that still tie are ordered by their digest
// so that every reader picks the same one whatever order it read files in.
func (a *WALSegmentRecord) supersedes(b *WALSegmentRecord) bool {
	if a.Size != b.Size {
		return a.Size > b.Size
	}
	if a.Sealed != b.Sealed {
		return a.Sealed
	}
	return bytes.Compare(a.BLAKE3[:], b.BLAKE3[:]) < 0
}

// ArchiveFile is the sealed JSON content of one wal/ file: what one archive
// run shipped for one space, or (when Supersedes is set) a consolidation of
// the files it names.
type ArchiveFile struct {
	Version    int                `json:"version"`
	Space      string             `json:"space"`
	Host       string             `json:"host"`
	Time       time.Time          `json:"time"`
	Supersedes []string           `json:"supersedes,omitempty"`
	Segments   []WALSegmentRecord `json:"segments"`
	// Seq numbers the space's wal/ files: a run file is one more than the
	// highest its writer had merged, a consolidation the highest it folds.
	// A number missing between the newest consolidation and the highest run
	// file is a run file deleted by hand or lost (MissingFiles). Files
	// written before numbering have none (0).
	Seq uint64 `json:"seq,omitempty"`
	// Identity and Timeline name the line of history the file belongs to
	// (absent: the legacy line, no identity, timeline 1). A reader checks
	// they match the directory it loaded the file from.
	Identity string `json:"identity,omitempty"`
	Timeline uint32 `json:"timeline,omitempty"`
}

// SetLine records the line in f, as setLine (for writers outside the
// package: prune's rewrite).
func (f *ArchiveFile) SetLine(l Line) { f.setLine(l) }

// setLine records the line in f (nothing for the legacy line, whose files
// stay byte-compatible with older binaries).
func (f *ArchiveFile) setLine(l Line) {
	f.Identity = l.Identity
	if l.Timeline > 1 {
		f.Timeline = l.Timeline
	}
}

// Line names one line of history of a space: the database it belongs to
// (Identity, "" for the legacy database that predates identities) and its
// timeline (1 = the history as first archived). Each line has its own wal/
// directory (LineDir).
type Line struct {
	Identity string `json:"identity"`
	Space    string `json:"space"`
	Timeline uint32 `json:"timeline"`
}

// Legacy is the line of space written before identities and timelines.
func Legacy(space string) Line { return Line{Space: space, Timeline: 1} }

// IsLegacy reports whether l is the legacy line (no identity, timeline 1).
func (l Line) IsLegacy() bool { return l.Identity == "" && l.Timeline <= 1 }

// Valid checks the space id, the identity (empty or 32 hex) and that the
// timeline is at least 1.
func (l Line) Valid() error {
	if err := engram.ValidSpaceID(l.Space); err != nil {
		return err
	}
	if l.Identity != "" {
		if err := engram.ValidIdentity(l.Identity); err != nil {
			return err
		}
	}
	if l.Timeline < 1 {
		return fmt.Errorf("space %s: timeline %d (timelines start at 1)", l.Space, l.Timeline)
	}
	return nil
}

// IdentityLabel is how an identity is shown: "(legacy)" for none.
func IdentityLabel(id string) string {
	if id == "" {
		return "(legacy)"
	}
	return id
}

// String formats a line as operators read it.
func (l Line) String() string {
	return fmt.Sprintf("space %s (identity %s, timeline %d)", l.Space, IdentityLabel(l.Identity), l.Timeline)
}

// WALArchive is the archive position of one space: the union of all its wal/
// files, one record per (segment name, compacted) slot, the longest winning.
type WALArchive struct {
	Space string
	Line  Line
	recs  map[walKey]*WALSegmentRecord
	files map[string]bool // wal/ files merged (run files and consolidations)
	// superseded are files a loaded consolidation includes.
	superseded map[string]bool
	runs       int // run files not yet consolidated
	// broken are records left out because their data cannot be read
	// (dropDamaged).
	broken []WALDamage
	// fileSeq is the highest wal/ file number merged, consSeq the highest
	// of a consolidation, runSeqs the numbers of the run files merged since;
	// unnumbered is set when a consolidation has no number (written before
	// numbering), which makes the numbers below it unknowable.
	fileSeq, consSeq uint64
	runSeqs          map[uint64]bool
	unnumbered       bool
}

func newWALArchive(l Line) *WALArchive {
	return &WALArchive{Space: l.Space, Line: l, recs: map[walKey]*WALSegmentRecord{}, files: map[string]bool{}, superseded: map[string]bool{},
		runSeqs: map[uint64]bool{}}
}

// merge adds records, keeping the winner of each slot. It reports how many
// slots changed.
func (w *WALArchive) merge(recs []WALSegmentRecord) int {
	n := 0
	for i := range recs {
		r := recs[i]
		k := r.key()
		if cur, ok := w.recs[k]; ok && !r.supersedes(cur) {
			continue
		}
		w.recs[k] = &r
		n++
	}
	return n
}

// Record returns the record of an ordinary (compacted=false) or compacted
// segment by name, or nil.
func (w *WALArchive) Record(name string, compacted bool) *WALSegmentRecord {
	return w.recs[walKey{name, compacted}]
}

// Segments returns every record, ordinary ones first, each group in sequence
// order.
func (w *WALArchive) Segments() []WALSegmentRecord {
	out := make([]WALSegmentRecord, 0, len(w.recs))
	for _, r := range w.recs {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b WALSegmentRecord) int {
		switch {
		case a.Compacted != b.Compacted:
			if a.Compacted {
				return 1
			}
			return -1
		case a.FirstSeq != b.FirstSeq:
			if a.FirstSeq < b.FirstSeq {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// Chain returns the ordinary (not compacted) records in sequence order: the
// archived history entry by entry. Compacted records are kept only as a last
// resort and are not part of the chain.
func (w *WALArchive) Chain() []*WALSegmentRecord {
	out := make([]*WALSegmentRecord, 0, len(w.recs))
	for _, r := range w.recs {
		if !r.Compacted {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *WALSegmentRecord) int {
		switch {
		case a.FirstSeq < b.FirstSeq:
			return -1
		case a.FirstSeq > b.FirstSeq:
			return 1
		}
		return 0
	})
	return out
}

// WALRun is a stretch of consecutive sequences that the archive holds entry by
// entry (ordinary segments whose sequences join up).
type WALRun struct {
	FirstSeq, LastSeq uint64
	FirstTS, LastTS   int64
	Segments          int
}

// Runs merges the chain into runs of consecutive sequences. A gap between two
// segments (sequences nobody archived) ends a run.
func (w *WALArchive) Runs() []WALRun {
	var out []WALRun
	for _, r := range w.Chain() {
		if n := len(out); n > 0 && r.FirstSeq <= out[n-1].LastSeq+1 {
			if r.LastSeq > out[n-1].LastSeq {
				out[n-1].LastSeq, out[n-1].LastTS = r.LastSeq, r.LastTS
			}
			out[n-1].Segments++
			continue
		}
		out = append(out, WALRun{FirstSeq: r.FirstSeq, LastSeq: r.LastSeq, FirstTS: r.FirstTS, LastTS: r.LastTS, Segments: 1})
	}
	return out
}

// End is the last archived sequence and its timestamp (zero when empty).
func (w *WALArchive) End() (uint64, int64) {
	var seq uint64
	var ts int64
	for _, r := range w.recs {
		if !r.Compacted && r.LastSeq > seq {
			seq, ts = r.LastSeq, r.LastTS
		}
	}
	return seq, ts
}

// Files returns how many wal/ files were merged and how many of them are run
// files awaiting consolidation.
func (w *WALArchive) Files() (merged, runs int) { return len(w.files), w.runs }

// numbered records the number of a merged wal/ file (walArchiveFile.Seq).
func (w *WALArchive) numbered(f *ArchiveFile) {
	w.fileSeq = max(w.fileSeq, f.Seq)
	switch {
	case len(f.Supersedes) > 0 && f.Seq == 0:
		w.unnumbered = true
	case len(f.Supersedes) > 0:
		w.consSeq = max(w.consSeq, f.Seq)
	case f.Seq > 0:
		w.runSeqs[f.Seq] = true
	}
}

// MissingFiles returns the numbers of run files that are neither present
// nor folded into a consolidation: files deleted or lost, whose records
// (and the stretch of WAL they held) are gone from the archive. The newest
// run file cannot be missed this way; check compares the audit trail for it.
func (w *WALArchive) MissingFiles() []uint64 {
	if w.unnumbered {
		return nil
	}
	var out []uint64
	for n := w.consSeq + 1; n <= w.fileSeq; n++ {
		if !w.runSeqs[n] {
			out = append(out, n)
		}
	}
	return out
}

// FileSeq returns the highest wal/ file number merged into the archive.
func (w *WALArchive) FileSeq() uint64 { return w.fileSeq }
