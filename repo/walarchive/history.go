package walarchive

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"memento/engram"
	"memento/repo"
	"memento/walreplay"
)

// DirHistory holds the history records of the timelines:
// history/<space tag>/<hash>, one sealed metadata file (kind KindHistory) per
// timeline of one (identity, space) (docs/repository-format.md, "History
// records").
const DirHistory = "history"

// KindHistory is the associated data of history/ files.
const KindHistory = "history"

// HistoryVersion is the only version of a history record; a reader refuses
// others with ErrFormat.
const HistoryVersion = 1

// HistoryRecord says where a timeline of a space of a database comes from:
// timeline Timeline continues its Parent's history through entry ForkSeq
// (included, timestamp ForkTS), then has its own entries. Timeline 1 has
// Parent 0 and ForkSeq 0: its record only registers the database (its host
// and data dir, for an operator choosing between databases that have a space
// of the same id).
type HistoryRecord struct {
	Version  int    `json:"version"`
	Identity string `json:"identity"`
	Space    string `json:"space"`
	Timeline uint32 `json:"timeline"`
	Parent   uint32 `json:"parent"`
	ForkSeq  uint64 `json:"fork_seq"`
	ForkTS   int64  `json:"fork_ts"`
	// Snapshot is the base snapshot of the restore that started the
	// timeline (empty for --new-timeline and timeline 1).
	Snapshot string `json:"snapshot,omitempty"`
	// Target is what the restore asked for ("at T", "to-seq N", "latest"),
	// or "new-timeline" (wal archive --new-timeline), or "first archive".
	Target  string    `json:"target"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	DataDir string    `json:"data_dir,omitempty"`
}

// Line is the line of history the record describes.
func (h *HistoryRecord) Line() Line {
	return Line{Identity: h.Identity, Space: h.Space, Timeline: h.Timeline}
}

// ParseHistoryRecord decodes and validates a history record's JSON: version
// 1 (another version is repo.ErrFormat), no unknown field, a valid space and
// identity, timeline >= 1, a parent below the timeline (0 exactly for
// timeline 1, which has no fork point).
func ParseHistoryRecord(b []byte) (*HistoryRecord, error) {
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v.Version != HistoryVersion {
		return nil, fmt.Errorf("%w: history record version %d", repo.ErrFormat, v.Version)
	}
	var h HistoryRecord
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&h); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b[d.InputOffset():])) != 0 {
		return nil, errors.New("trailing data after the JSON object")
	}
	if err := engram.ValidSpaceID(h.Space); err != nil {
		return nil, err
	}
	if h.Identity != "" { // "": the legacy database (a data dir without identity.json)
		if err := engram.ValidIdentity(h.Identity); err != nil {
			return nil, err
		}
	}
	switch {
	case h.Timeline < 1:
		return nil, fmt.Errorf("timeline %d (timelines start at 1)", h.Timeline)
	case h.Timeline == 1 && (h.Parent != 0 || h.ForkSeq != 0 || h.ForkTS != 0):
		return nil, errors.New("timeline 1 has no parent and no fork point")
	case h.Timeline > 1 && (h.Parent < 1 || h.Parent >= h.Timeline):
		return nil, fmt.Errorf("timeline %d: parent %d must be in 1..%d", h.Timeline, h.Parent, h.Timeline-1)
	}
	return &h, nil
}

// EncodeHistoryRecord is the JSON of a history record (as sealed).
func EncodeHistoryRecord(h *HistoryRecord) []byte {
	b, _ := json.Marshal(h) // cannot fail
	return b
}

// HistoryDir is the directory of the history records of a space, every
// database's: a keyed hash of the space id (as SpaceDir), so that a reader
// finds every database that has the space without knowing its identity.
func HistoryDir(r Records, space string) string {
	id := r.ChunkKey(space).Sum([]byte("memento history directory v1"))
	return DirHistory + "/" + hex.EncodeToString(id[:16])
}

// SaveHistory writes a history record (Backend.Write is atomic: the record
// is either there whole or not at all).
func SaveHistory(ctx context.Context, r Repository, h *HistoryRecord) error {
	h.Version = HistoryVersion
	if _, err := ParseHistoryRecord(EncodeHistoryRecord(h)); err != nil {
		return fmt.Errorf("history record: %w", err)
	}
	if _, err := r.SaveFile(ctx, HistoryDir(r, h.Space), KindHistory, json.RawMessage(EncodeHistoryRecord(h))); err != nil {
		return fmt.Errorf("%s: save history record: %w", h.Line(), err)
	}
	return nil
}

// History is what the repository knows of one database's timelines of a
// space: the history record of each timeline.
type History struct {
	Identity, Space string
	Records         map[uint32]*HistoryRecord
}

// Newest is the highest timeline recorded (1 when none is).
func (h *History) Newest() uint32 {
	n := uint32(1)
	for t := range h.Records {
		n = max(n, t)
	}
	return n
}

// Timelines lists the timelines recorded (1 always), ascending.
func (h *History) Timelines() []uint32 {
	out := []uint32{1}
	for t := range h.Records {
		if t > 1 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Path returns the chain of timeline n back to timeline 1: n, its parent,
// ..., 1. An unknown timeline (or a broken chain) is repo.ErrNotFound.
func (h *History) Path(n uint32) ([]uint32, error) {
	var out []uint32
	for t := n; ; {
		out = append(out, t)
		if t == 1 {
			return out, nil
		}
		rec := h.Records[t]
		if rec == nil {
			return nil, fmt.Errorf("%s (identity %s): %w: timeline %d has no history record", h.Space, IdentityLabel(h.Identity), repo.ErrNotFound, t)
		}
		t = rec.Parent
	}
}

// Bases says which snapshots are of one timeline's history: a snapshot of
// the timeline itself, or of an ancestor on its path taken at or before
// the fork that leads to it (its WAL end at most the fork sequence).
// A recovery on the timeline starts from one of them, and the newest of
// them ends the history snapshots hold (End).
type Bases struct {
	line Line
	caps map[uint32]uint64 // per timeline of the path: the highest WAL end
}

// Bases returns the bases of timeline n (Path's errors).
func (h *History) Bases(n uint32) (*Bases, error) {
	path, err := h.Path(n)
	if err != nil {
		return nil, err
	}
	b := &Bases{line: Line{Identity: h.Identity, Space: h.Space, Timeline: n}, caps: map[uint32]uint64{}}
	limit := uint64(math.MaxUint64)
	for i, t := range path {
		b.caps[t] = limit
		if i < len(path)-1 {
			limit = min(limit, h.Records[t].ForkSeq)
		}
	}
	return b, nil
}

// Of reports whether sn is a snapshot of the timeline's history.
func (b *Bases) Of(sn *repo.Snapshot) bool {
	if sn.Space != b.line.Space || sn.Identity() != b.line.Identity {
		return false
	}
	c, ok := b.caps[sn.Timeline()]
	return ok && sn.Engram != nil && sn.Engram.WALEnd.Seq <= c
}

// End is the newest entry of the timeline's history that a snapshot among
// snaps holds: the highest WAL end of a base (zero when none).
func (b *Bases) End(snaps []*repo.Snapshot) repo.WALPosition {
	var end repo.WALPosition
	for _, sn := range snaps {
		if b.Of(sn) && sn.Engram.WALEnd.Seq > end.Seq {
			end = sn.Engram.WALEnd
		}
	}
	return end
}

// LoadHistories reads every history record of the space and groups them by
// database (identity). Two records for the same timeline (two restores that
// started one at the same moment) keep the older one (then the smaller
// file name): every reader picks the same one.
func LoadHistories(ctx context.Context, r Records, space string) (map[string]*History, error) {
	if err := engram.ValidSpaceID(space); err != nil {
		return nil, err
	}
	dir := HistoryDir(r, space)
	var names []string
	err := r.Backend().List(ctx, dir, func(name string, size int64) error {
		if !strings.Contains(strings.TrimPrefix(name, dir+"/"), "/") {
			names = append(names, name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("space %s: list history records: %w", space, err)
	}
	sort.Strings(names)
	recs := make([]*HistoryRecord, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, name := range names {
		g.Go(func() error {
			var raw json.RawMessage
			if err := r.LoadFile(gctx, name, KindHistory, &raw); err != nil {
				return fmt.Errorf("space %s: history record: %w", space, err)
			}
			h, err := ParseHistoryRecord(raw)
			if err != nil {
				if errors.Is(err, repo.ErrFormat) {
					return fmt.Errorf("space %s: history record %s: %w", space, name, err)
				}
				return repo.Corruptf("history "+name, "%v", err)
			}
			if h.Space != space {
				return repo.Corruptf("history "+name, "belongs to space %q, found under space %q", h.Space, space)
			}
			recs[i] = h
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]*History{}
	for _, h := range recs {
		db := out[h.Identity]
		if db == nil {
			db = &History{Identity: h.Identity, Space: space, Records: map[uint32]*HistoryRecord{}}
			out[h.Identity] = db
		}
		if cur := db.Records[h.Timeline]; cur != nil && !h.Time.Before(cur.Time) {
			continue
		}
		db.Records[h.Timeline] = h
	}
	return out, nil
}

// LoadHistory returns one database's history of the space (empty when no
// record exists: the database has only timeline 1).
func LoadHistory(ctx context.Context, r Records, identity, space string) (*History, error) {
	h := &History{Identity: identity, Space: space, Records: map[uint32]*HistoryRecord{}}
	all, err := LoadHistories(ctx, r, space)
	if err != nil {
		return nil, err
	}
	if got := all[identity]; got != nil {
		return got, nil
	}
	return h, nil
}

// LoadTimeline returns the archived history of timeline n of a database's
// space as one WALArchive: the parent's history (recursively) through the
// fork point, then the timeline's own records, which replace the parent's
// segment of the same name (the segment holding the fork point, as the
// restored data dir archived it). A parent's record that runs past the fork
// point is cut there (its entries after it belong to the parent only); a
// parent's compacted segment past the fork point is left out. The result
// is for reading (pitr, restore, verify), never for appending.
func LoadTimeline(ctx context.Context, r Records, h *History, n uint32) (*WALArchive, error) {
	path, err := h.Path(n)
	if err != nil {
		return nil, err
	}
	var out *WALArchive
	for i := len(path) - 1; i >= 0; i-- {
		t := path[i]
		own, err := LoadLine(ctx, r, Line{Identity: h.Identity, Space: h.Space, Timeline: t})
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = own
			continue
		}
		rec := h.Records[t]
		child := newWALArchive(own.Line)
		for k, s := range out.recs {
			switch {
			case s.FirstSeq > rec.ForkSeq:
				continue
			case s.LastSeq > rec.ForkSeq && s.Compacted:
				continue
			case s.LastSeq > rec.ForkSeq:
				c := *s
				c.LastSeq, c.LastTS, c.Entries = rec.ForkSeq, rec.ForkTS, int64(rec.ForkSeq-s.FirstSeq+1)
				c.FirstTS = min(c.FirstTS, c.LastTS)
				child.recs[k] = &c
			default:
				child.recs[k] = s
			}
		}
		for k, s := range own.recs {
			child.recs[k] = s
		}
		child.broken = append(out.broken, own.broken...)
		child.files, child.runs, child.fileSeq = own.files, own.runs, own.fileSeq
		out = child
	}
	return out, nil
}

// Database is one database that has a space in the repository, as an
// operator chooses it: its identity ("" for the legacy one), and the host
// and data dir of its newest history record or snapshot.
type Database struct {
	Identity string    `json:"identity"`
	Host     string    `json:"host"`
	DataDir  string    `json:"data_dir,omitempty"`
	Seen     time.Time `json:"seen"`
}

// Databases lists the databases that have the space: those with history
// records, those with snapshots of it (by their identity tag; none: the
// legacy database), and the legacy database when its wal/ directory holds
// anything. Sorted by identity.
func Databases(ctx context.Context, r Repository, space string) ([]Database, error) {
	hs, err := LoadHistories(ctx, r, space)
	if err != nil {
		return nil, err
	}
	by := map[string]*Database{}
	see := func(id, host, dataDir string, t time.Time) {
		d := by[id]
		if d == nil {
			d = &Database{Identity: id}
			by[id] = d
		}
		if t.After(d.Seen) || d.Host == "" {
			d.Seen, d.Host = t, host
			if dataDir != "" {
				d.DataDir = dataDir
			}
		}
	}
	for id, h := range hs {
		for _, rec := range h.Records {
			see(id, rec.Host, rec.DataDir, rec.Time)
		}
	}
	sns, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return nil, err
	}
	for _, sn := range sns {
		if sn.Space == space && sn.Engram != nil {
			see(sn.Identity(), sn.Host, "", sn.Time)
		}
	}
	if by[""] == nil {
		legacy := false
		err := r.Backend().List(ctx, SpaceDir(r, space), func(string, int64) error { legacy = true; return nil })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if legacy {
			see("", "", "", time.Time{})
		}
	}
	out := make([]Database, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identity < out[j].Identity })
	return out, nil
}

// ErrAmbiguous is returned (wrapped) when a space id names a space of more
// than one database and nothing chose one (--identity, --host).
var ErrAmbiguous = errors.New("the space exists in more than one database")

// ResolveDatabase picks the database of space: identity when given
// ("legacy" or "(legacy)" is the legacy database), else the only one whose
// host is host when host is given, else the only one (not counting the
// legacy database when others exist: after an upgrade it is the history of
// a data dir from before it had an identity). Anything else is an
// ErrAmbiguous error listing the candidates, or repo.ErrNotFound.
func ResolveDatabase(ctx context.Context, r Repository, space, identity, host string) (string, error) {
	if identity == "legacy" || identity == "(legacy)" {
		return "", nil
	}
	if identity != "" {
		if err := engram.ValidIdentity(identity); err != nil {
			return "", fmt.Errorf("--identity: %w", err)
		}
		return identity, nil
	}
	dbs, err := Databases(ctx, r, space)
	if err != nil {
		return "", err
	}
	return ChooseDatabase(space, host, dbs)
}

// ChooseDatabase is ResolveDatabase's choice among the databases dbs that
// have space (sorted by identity, as Databases returns them) when no
// identity was given: the only one whose host is host when host is given,
// else the only one, not counting the legacy database when others exist.
// The mount makes the same choice among the databases it knows of.
func ChooseDatabase(space, host string, dbs []Database) (string, error) {
	cands := dbs
	if len(dbs) > 1 && dbs[0].Identity == "" && host == "" {
		// The legacy database next to databases with identities is, after
		// an upgrade, the same data dir's history before it got its
		// identity: it does not make the space ambiguous (reach it with
		// --identity legacy).
		cands = dbs[1:]
	}
	if host != "" {
		cands = nil
		for _, d := range dbs {
			if d.Host == host {
				cands = append(cands, d)
			}
		}
	}
	switch len(cands) {
	case 1:
		return cands[0].Identity, nil
	case 0:
		if host != "" {
			return "", fmt.Errorf("space %s: %w: no database of host %q has it (%s)", space, repo.ErrNotFound, host, listDatabases(dbs))
		}
		return "", nil // nothing known: the legacy line, whose readers say what is missing
	}
	return "", fmt.Errorf("space %s: %w: %s; choose one with --identity ID (or --host H when that is unambiguous)", space, ErrAmbiguous, listDatabases(cands))
}

func listDatabases(dbs []Database) string {
	parts := make([]string, len(dbs))
	for i, d := range dbs {
		parts[i] = fmt.Sprintf("identity %s host %q data dir %q", IdentityLabel(d.Identity), d.Host, d.DataDir)
	}
	return "candidates: " + strings.Join(parts, "; ")
}

// loadDataDirTimeline returns the archived history of the timeline the
// data dir's space is on (DataDirLine, LoadTimeline).
func loadDataDirTimeline(ctx context.Context, r Repository, dataDir, space string) (*WALArchive, error) {
	l, err := DataDirLine(dataDir, space)
	if err != nil {
		return nil, fmt.Errorf("space %s: %w", space, err)
	}
	if l.Timeline == 1 {
		return LoadLine(ctx, r, l)
	}
	h, err := LoadHistory(ctx, r, l.Identity, space)
	if err != nil {
		return nil, err
	}
	return LoadTimeline(ctx, r, h, l.Timeline)
}

// DataDirTimeline returns the line of history the data dir's space is on,
// recording first the new timeline a restore left pending
// (engram.PendingFork in timelines.json): its history record (timeline =
// the database's highest + 1, forked from the entry's timeline at the
// restore's point) is written to the repository, then timelines.json names
// the new timeline. `wal archive`, `wal watch` and `backup` call it before
// anything else, so the branch a restore started is archived without a
// manual step, and a restore whose result is never archived (a scratch
// copy) records nothing.
func DataDirTimeline(ctx context.Context, r Repository, dataDir, space, host string) (Line, error) {
	l, err := DataDirLine(dataDir, space)
	if err != nil {
		return l, err
	}
	tl, err := engram.ReadTimelines(dataDir)
	if err != nil {
		return l, err
	}
	if tl.Fork(space) == nil {
		return l, nil
	}
	// A fork is pending: from here to the write of timelines.json under
	// its lock, read again, so that the fork is recorded once and the
	// other spaces' entries, updated meanwhile, are kept.
	unlock, err := engram.LockTimelines(dataDir)
	if err != nil {
		return l, err
	}
	defer unlock()
	if l, err = DataDirLine(dataDir, space); err != nil {
		return l, err
	}
	if tl, err = engram.ReadTimelines(dataDir); err != nil {
		return l, err
	}
	f := tl.Fork(space)
	if f == nil {
		return l, nil
	}
	h, err := LoadHistory(ctx, r, l.Identity, space)
	if err != nil {
		return l, err
	}
	if _, err := h.Path(l.Timeline); err != nil {
		return l, err
	}
	// A data dir whose WAL still holds the whole history of its timeline
	// (its archive, and the newest entry its snapshots hold) lost nothing: the restore that left the fork never swapped its
	// result in (killed between writing timelines.json and the swap), or
	// put the space back where it was. It stays on its timeline.
	arch, err := LoadTimeline(ctx, r, h, l.Timeline)
	if err != nil {
		return l, err
	}
	if ok, err := holdsHistory(ctx, r, dataDir, space, h, l.Timeline, arch, f); err != nil {
		return l, err
	} else if ok {
		tl.Set(space, l.Timeline)
		return l, engram.WriteTimelines(dataDir, tl)
	}
	abs, _ := filepath.Abs(dataDir)
	rec := &HistoryRecord{Identity: l.Identity, Space: space, Timeline: h.Newest() + 1, Parent: l.Timeline,
		ForkSeq: f.Seq, ForkTS: f.TS, Snapshot: f.Snapshot, Target: f.Target, Time: time.Now().UTC(), Host: host, DataDir: abs}
	if got := recordedFork(h, rec, f); got != nil {
		// Another archiver (another host sharing the data dir, whose
		// flock does not reach this one) recorded this very fork: adopt
		// its timeline rather than start a second one.
		tl.Set(space, got.Timeline)
		if err := engram.WriteTimelines(dataDir, tl); err != nil {
			return l, err
		}
		l.Timeline = got.Timeline
		return l, nil
	}
	if err := SaveHistory(ctx, r, rec); err != nil {
		return l, err
	}
	// Two archivers recording at the same moment both write timeline N+1;
	// every reader keeps the same one of the two (LoadHistories). The same
	// fork twice is harmless (both records say the same); a different
	// fork that won the number is another data dir of this identity
	// forking at the same moment: refuse rather than archive into its
	// timeline (the next run records the next number).
	if h2, err := LoadHistory(ctx, r, l.Identity, space); err != nil {
		return l, err
	} else if won := h2.Records[rec.Timeline]; won == nil || !sameFork(won, rec) {
		return l, fmt.Errorf("space %s: timeline %d was recorded at the same moment by another data dir of this database (%s), not from this data dir's restore; run the archive again to record the next timeline (a copy of a data dir must be restored with --as-new)",
			space, rec.Timeline, describeRecord(won))
	}
	tl.Set(space, rec.Timeline)
	if err := engram.WriteTimelines(dataDir, tl); err != nil {
		return l, fmt.Errorf("space %s: timeline %d recorded in the repository, but %s could not be updated: %w", space, rec.Timeline, engram.TimelinesPath(dataDir), err)
	}
	l.Timeline = rec.Timeline
	return l, nil
}

// recordedFork returns the history record, if any, of the fork f already
// recorded (by another archiver of the same data dir): a timeline whose
// parent, fork point, snapshot and target are rec's and which was recorded
// after the restore that left f ran (a later restore to the same point is
// a fork of its own).
func recordedFork(h *History, rec *HistoryRecord, f *engram.PendingFork) *HistoryRecord {
	ran, err := time.Parse(time.RFC3339Nano, f.Time)
	if err != nil {
		return nil
	}
	var best *HistoryRecord
	for _, cand := range h.Records {
		if sameFork(cand, rec) && !cand.Time.Before(ran) && (best == nil || cand.Timeline < best.Timeline) {
			best = cand
		}
	}
	return best
}

// sameFork reports whether two history records describe the same fork.
func sameFork(a, b *HistoryRecord) bool {
	return a.Timeline > 1 && a.Parent == b.Parent && a.ForkSeq == b.ForkSeq && a.ForkTS == b.ForkTS &&
		a.Snapshot == b.Snapshot && a.Target == b.Target
}

func describeRecord(h *HistoryRecord) string {
	if h == nil {
		return "its record is unreadable"
	}
	return fmt.Sprintf("host %q, data dir %q, forked from timeline %d at seq %d", h.Host, h.DataDir, h.Parent, h.ForkSeq)
}

// LoadSnapshotTimeline returns the archived history of the timeline a
// space snapshot was taken on (its identity and timeline tags; none: the
// legacy line).
func LoadSnapshotTimeline(ctx context.Context, r Records, sn *repo.Snapshot) (*WALArchive, error) {
	h, err := LoadHistory(ctx, r, sn.Identity(), sn.Space)
	if err != nil {
		return nil, err
	}
	return LoadTimeline(ctx, r, h, sn.Timeline())
}

// holdsHistory reports whether the data dir's WAL still holds the whole
// history of timeline n up to now: the archive (holdsArchive) and, when a
// snapshot of the timeline (Bases.End) ends after the pending fork's point,
// that snapshot's last entry, same sequence and timestamp (a backups-only
// repository has its history in its snapshots alone).
func holdsHistory(ctx context.Context, r Repository, dataDir, space string, h *History, n uint32, arch *WALArchive, f *engram.PendingFork) (bool, error) {
	if ok, err := holdsArchive(dataDir, space, arch); err != nil || !ok {
		return false, err
	}
	bases, err := h.Bases(n)
	if err != nil {
		return false, err
	}
	snaps, err := r.SnapshotsOf(ctx, space)
	if err != nil {
		return false, err
	}
	end := bases.End(snaps)
	if end.Seq <= f.Seq {
		return true, nil // no snapshot holds entries after the restored point
	}
	l, err := walreplay.OpenLog(engram.WALDir(dataDir, space))
	if err != nil {
		return false, fmt.Errorf("space %s: %w", space, err)
	}
	return l.Holds(ctx, end.Seq, end.TimestampNS)
}

// holdsArchive reports whether the data dir's WAL holds the archive's last
// archived segment whole (the file at least as long as the record, with the
// same bytes there): everything the archive has is still on disk.
func holdsArchive(dataDir, space string, arch *WALArchive) (bool, error) {
	chain := arch.Chain()
	if len(chain) == 0 {
		return true, nil
	}
	last := chain[len(chain)-1]
	p := filepath.Join(engram.WALDir(dataDir, space), last.Name)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Size() < last.Size {
		return false, nil
	}
	return prefixMatches(p, last)
}

// SpaceLines lists the lines of history of a space the repository may
// hold archives of: the legacy line, then every timeline of every database
// with history records (sorted by identity, then timeline).
func SpaceLines(ctx context.Context, r Records, space string) ([]Line, error) {
	hs, err := LoadHistories(ctx, r, space)
	if err != nil {
		return nil, err
	}
	out := []Line{Legacy(space)}
	ids := make([]string, 0, len(hs))
	for id := range hs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for _, n := range hs[id].Timelines() {
			if l := (Line{Identity: id, Space: space, Timeline: n}); !l.IsLegacy() {
				out = append(out, l)
			}
		}
	}
	return out, nil
}
