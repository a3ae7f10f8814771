package walarchive

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"memento/repo"
)

// DirWAL holds the WAL archive: wal/<space tag>/<hash> for the file each
// archive run writes, wal/<space tag>/c/<hash> for consolidations.
const DirWAL = "wal"

// ConsolidateAfter is how many run files of a space may accumulate before an
// archive run folds them (and the previous consolidation) into one
// consolidated file and deletes them. It bounds what a new archiver or a
// restore reads to one consolidation plus at most this many run files.
const ConsolidateAfter = 64

// SpaceDir is the directory of a space's wal/ files. It is named by a
// keyed hash of the space id, not the id itself, so that file names reveal
// nothing about the spaces a repository holds; reading one space's archive
// lists only that space's directory.
func SpaceDir(r Records, space string) string {
	id := r.ChunkKey(space).Sum([]byte("memento wal archive directory v1"))
	return DirWAL + "/" + hex.EncodeToString(id[:16])
}

// LineDir is the directory of the wal/ files of one line of history: the
// legacy line (no identity, timeline 1) keeps SpaceDir; every other
// (identity, timeline) of the space has its own directory, so two databases
// or two timelines never merge records, and binaries that know only
// SpaceDir never see them as theirs (docs/repository-format.md).
func LineDir(r Records, l Line) string {
	if l.IsLegacy() {
		return SpaceDir(r, l.Space)
	}
	id := r.ChunkKey(l.Space).Sum([]byte("memento wal archive directory v2\x00" + l.Identity + "\x00" + strconv.FormatUint(uint64(l.Timeline), 10)))
	return DirWAL + "/" + hex.EncodeToString(id[:16])
}

// LoadWALArchive reads the archive position of a space from the repository:
// the newest consolidations and every run file they do not include, merged.
// A file deleted by a concurrent consolidation while it is read makes the
// load start over (it is then part of a newer consolidation).
func LoadWALArchive(ctx context.Context, r Records, space string) (*WALArchive, error) {
	return LoadLine(ctx, r, Legacy(space))
}

// LoadLine reads the archive of one line of history (identity, space,
// timeline) as LoadWALArchive reads the legacy one; it holds only that
// timeline's own records (History composes a timeline with its parents).
func LoadLine(ctx context.Context, r Records, l Line) (*WALArchive, error) {
	if err := l.Valid(); err != nil {
		return nil, err
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var w *WALArchive
		w, err = loadWALArchive(ctx, r, l)
		if err == nil {
			return w, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

func loadWALArchive(ctx context.Context, r Records, l Line) (*WALArchive, error) {
	space := l.Space
	dir := LineDir(r, l)
	var runs, cons []string
	err := r.Backend().List(ctx, dir, func(name string, size int64) error {
		rel := strings.TrimPrefix(name, dir+"/")
		switch {
		case strings.HasPrefix(rel, "c/") && !strings.Contains(rel[2:], "/"):
			cons = append(cons, name)
		case !strings.Contains(rel, "/"):
			runs = append(runs, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("space %s: list WAL archive: %w", space, err)
	}
	w := newWALArchive(l)
	files := make([]ArchiveFile, len(cons))
	if err := loadWALFiles(ctx, r, l, cons, files); err != nil {
		return nil, err
	}
	for i, f := range files {
		w.files[cons[i]] = true
		for _, s := range f.Supersedes {
			w.superseded[s] = true
		}
		w.merge(f.Segments)
		w.numbered(&files[i])
	}
	var todo []string
	for _, n := range runs {
		if !w.superseded[n] {
			todo = append(todo, n)
		}
	}
	files = make([]ArchiveFile, len(todo))
	if err := loadWALFiles(ctx, r, l, todo, files); err != nil {
		return nil, err
	}
	for i, f := range files {
		w.files[todo[i]] = true
		w.merge(f.Segments)
		w.numbered(&files[i])
	}
	w.runs = len(todo)
	return w, nil
}

// walFileReads is how many WAL archive run files loadWALFiles reads at
// once. They are small metadata files (a few segment records each), so
// reading them is bound by the storage's latency (an S3 round trip per
// file), not by bandwidth or CPU: eight overlap it, as many as the S3
// backend's default connections.
const walFileReads = 8

// loadWALFiles reads names into files, walFileReads at a time.
func loadWALFiles(ctx context.Context, r Records, l Line, names []string, files []ArchiveFile) error {
	space := l.Space
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walFileReads)
	for i, name := range names {
		g.Go(func() error {
			f := &files[i]
			if err := r.LoadFile(gctx, name, KindWALArchive, f); err != nil {
				return fmt.Errorf("space %s: WAL archive: %w", space, err)
			}
			if f.Version < 1 || f.Version > WALArchiveVersion {
				return fmt.Errorf("space %s: WAL archive file %s: %w: version %d", space, name, repo.ErrFormat, f.Version)
			}
			if f.Space != space {
				return repo.Corruptf("walarchive "+name, "belongs to space %q, found under space %q", f.Space, space)
			}
			if f.Identity != l.Identity || max(f.Timeline, 1) != l.Timeline {
				return repo.Corruptf("walarchive "+name, "belongs to identity %q timeline %d, found under identity %q timeline %d",
					f.Identity, max(f.Timeline, 1), l.Identity, l.Timeline)
			}
			return checkWALRecords(name, f.Segments)
		})
	}
	return g.Wait()
}

// checkWALRecords validates records read from the repository: they come from
// files that authenticate, but a bug in a writer must not become a restore
// that writes nonsense.
func checkWALRecords(file string, recs []WALSegmentRecord) error {
	for _, s := range recs {
		what := "walarchive " + file
		if path.Base(s.Name) != s.Name || !strings.HasPrefix(s.Name, "wal-") || !strings.HasSuffix(s.Name, ".log") {
			return repo.Corruptf(what, "segment name %q", s.Name)
		}
		var total int64
		for _, c := range s.Chunks {
			total += int64(c.Size)
		}
		switch {
		case total != s.Size:
			return repo.Corruptf(what, "segment %s: chunks hold %d bytes, record says %d", s.Name, total, s.Size)
		case s.Size <= 0 || s.Entries <= 0:
			return repo.Corruptf(what, "segment %s: empty record", s.Name)
		case s.Pieces < 0 || s.Pieces >= len(s.Chunks):
			return repo.Corruptf(what, "segment %s: %d pieces before the last of its %d chunks", s.Name, s.Pieces, len(s.Chunks))
		case s.LastSeq < s.FirstSeq || s.LastTS < s.FirstTS:
			return repo.Corruptf(what, "segment %s: range %d..%d / %d..%d is inverted", s.Name, s.FirstSeq, s.LastSeq, s.FirstTS, s.LastTS)
		case !s.Compacted && uint64(s.Entries) != s.LastSeq-s.FirstSeq+1:
			return repo.Corruptf(what, "segment %s: %d entries for sequences %d..%d", s.Name, s.Entries, s.FirstSeq, s.LastSeq)
		}
	}
	return nil
}

// SaveWALFile writes one run's records for a space and merges them into w.
// The caller has already written the packs and the index file naming every
// chunk the records list (packs, index, then wal/ file: an interruption
// leaves at worst unreferenced packs).
func SaveWALFile(ctx context.Context, r Repository, w *WALArchive, host string, recs []WALSegmentRecord) error {
	st, err := stageWALFile(ctx, r, w, host, recs)
	if err != nil || st == nil {
		return err
	}
	return st.commit(ctx)
}

// stagedWALFile is one run's record file written where no reader sees it
// (repo.StageFile), to be published by commit once the packs and the index
// file naming its chunks are durable, or dropped by abort.
type stagedWALFile struct {
	w    *WALArchive
	file *repo.StagedFile
	f    ArchiveFile
}

// stageWALFile stages the record file of recs (nil for none). w must not
// change until the file is committed or aborted: the file carries the
// number after w's last.
func stageWALFile(ctx context.Context, r Repository, w *WALArchive, host string, recs []WALSegmentRecord) (*stagedWALFile, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	f := ArchiveFile{Version: WALArchiveVersion, Space: w.Space, Host: host, Time: time.Now().UTC(), Segments: recs, Seq: w.fileSeq + 1}
	f.setLine(w.Line)
	sf, err := r.StageFile(ctx, LineDir(r, w.Line), KindWALArchive, f)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", w.Space, err)
	}
	return &stagedWALFile{w: w, file: sf, f: f}, nil
}

// commit publishes the record file and merges its records into w.
func (s *stagedWALFile) commit(ctx context.Context) error {
	if err := s.file.Commit(ctx); err != nil {
		return fmt.Errorf("space %s: %w", s.w.Space, err)
	}
	w := s.w
	w.files[s.file.Name] = true
	w.runs++
	w.merge(s.f.Segments)
	w.numbered(&s.f)
	return nil
}

// abort drops the staged file (nil: nothing staged).
func (s *stagedWALFile) abort() {
	if s != nil {
		s.file.Abort()
	}
}

// ConsolidateWAL folds every wal/ file of the space that w has merged into one
// consolidated file, then deletes the files it supersedes. Readers that list
// before the deletion and read after it start over (LoadWALArchive).
func ConsolidateWAL(ctx context.Context, r Repository, w *WALArchive, host string) error {
	names := make([]string, 0, len(w.files))
	for n := range w.files {
		names = append(names, n)
	}
	sort.Strings(names)
	f := ArchiveFile{Version: WALArchiveVersion, Space: w.Space, Host: host, Time: time.Now().UTC(),
		Supersedes: names, Segments: w.Segments(), Seq: w.fileSeq}
	f.setLine(w.Line)
	dir := LineDir(r, w.Line) + "/c"
	id, err := r.SaveFile(ctx, dir, KindWALArchive, f)
	if err != nil {
		return fmt.Errorf("space %s: consolidate WAL archive: %w", w.Space, err)
	}
	name := repo.FileName(dir, id)
	// Under Object Lock the superseded files are retained: they stay
	// (readers skip what a consolidation supersedes) until a prune on the
	// privileged host, after the retention, deletes them.
	rt, ok := r.Backend().(repo.Retainer)
	retained := ok && rt.ObjectLocked()
	for _, n := range names {
		if n == name {
			continue
		}
		if retained {
			w.superseded[n] = true
			continue
		}
		if err := r.Backend().Delete(ctx, n); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.Logger().Warn("could not delete a consolidated WAL archive file; it is harmless", "file", n, "err", err)
		}
		w.superseded[n] = true
	}
	w.files = map[string]bool{name: true}
	w.runs = 0
	w.runSeqs = map[uint64]bool{}
	w.numbered(&f)
	return nil
}
