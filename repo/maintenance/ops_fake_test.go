package maintenance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backend/mem"
)

// Each operation runs here against a fake built only of the methods of the
// operation's interface (the parts below are embedded structs, no embedded
// interface): that it compiles is the proof the operation needs no more of
// the storage core.

// files is a damageRepo: a mem backend whose files are JSON.
type files struct {
	be *mem.Backend
}

func (f *files) Backend() repo.Backend { return f.be }
func (f *files) Logger() *slog.Logger  { return slog.New(slog.DiscardHandler) }
func (f *files) LoadFile(ctx context.Context, name string, kind string, v any) error {
	b, ok := f.be.Bytes(name)
	if !ok {
		return fmt.Errorf("%s %s: %w", kind, name, fs.ErrNotExist)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return repo.Corruptf(kind+" "+name, "invalid JSON: %v", err)
	}
	return nil
}

// saver is a damageMarker: it writes JSON under dir, named by its BLAKE3.
type saver struct {
	out *mem.Backend
}

func (s *saver) SaveFile(ctx context.Context, dir string, kind string, v any) ([32]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return [32]byte{}, err
	}
	id := blake3.Sum256(b)
	return id, s.out.Write(ctx, repo.FileName(dir, id), bytes.NewReader(b), int64(len(b)))
}

// unheld takes a lock that holds nothing.
type unheld struct{}

func (unheld) Lock(ctx context.Context, exclusive bool, command string) (*repo.Lock, error) {
	return repo.UnheldLock(ctx), nil
}

func (unheld) LockManifests(ctx context.Context, command string) (*repo.Lock, error) {
	return repo.UnheldLock(ctx), nil
}

func (unheld) LockPrune(ctx context.Context, command string) (*repo.Lock, error) {
	return repo.UnheldLock(ctx), nil
}

func (unheld) LockExclusiveOver(ctx context.Context, command string, held ...*repo.Lock) (*repo.Lock, error) {
	return repo.UnheldLock(ctx), nil
}

// appender appends to an audit trail in memory.
type appender struct {
	mu   sync.Mutex
	recs []repo.AuditRecord
}

func (a *appender) AppendAudit(ctx context.Context, rec repo.AuditRecord) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, rec)
	return fmt.Sprintf("logs/%d", len(a.recs)), nil
}

func newIndex(t *testing.T) *index.Index {
	t.Helper()
	ix, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func write(t *testing.T, be *mem.Backend, name string, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Write(context.Background(), name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func has(be *mem.Backend, name string) bool { _, ok := be.Bytes(name); return ok }

func pathSnapshot(id byte, at time.Time) *repo.Snapshot {
	return &repo.Snapshot{ID: chunk.ID{id}, Manifest: repo.Manifest{Version: 1, Time: at, Host: "h", Paths: []string{"/src"}, Root: chunk.ID{0xee}}}
}

// TestDamagedSnapshotsWithoutRepository lists the damage markers of a
// damageRepo fake: the oldest marker of a snapshot wins, with the file it is
// in; an unreadable marker is skipped.
func TestDamagedSnapshotsWithoutRepository(t *testing.T) {
	f := &files{be: mem.New("damaged")}
	now := time.Now().UTC()
	write(t, f.be, "damaged/"+strings.Repeat("1", 64), DamageRecord{Version: 1, Time: now, Snapshot: "s1", Reason: "newer"})
	write(t, f.be, "damaged/"+strings.Repeat("2", 64), DamageRecord{Version: 1, Time: now.Add(-time.Hour), Snapshot: "s1", Reason: "older"})
	write(t, f.be, "damaged/"+strings.Repeat("3", 64), DamageRecord{Version: 1, Time: now, Snapshot: "s2", Reason: "other"})
	write(t, f.be, "damaged/"+strings.Repeat("4", 64), []byte("not json"))
	got, err := DamagedSnapshots(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["s1"].Reason != "older" || got["s1"].File != "damaged/"+strings.Repeat("2", 64) || got["s2"].Reason != "other" {
		t.Fatalf("DamagedSnapshots = %+v", got)
	}
}

// forgetFake is a forgetRepo.
type forgetFake struct {
	files
	unheld
	appender
	ix  *index.Index
	sns []*repo.Snapshot
}

func (f *forgetFake) AuditLog(ctx context.Context, since time.Time) ([]repo.AuditRecord, []error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs), nil, nil
}
func (f *forgetFake) Index() *index.Index                                     { return f.ix }
func (f *forgetFake) Sync(ctx context.Context) error                          { return nil }
func (f *forgetFake) Snapshots(ctx context.Context) ([]*repo.Snapshot, error) { return f.sns, nil }
func (f *forgetFake) FindSnapshot(ctx context.Context, ref string) (*repo.Snapshot, error) {
	for _, sn := range f.sns {
		if strings.HasPrefix(sn.ID.String(), ref) {
			return sn, nil
		}
	}
	return nil, repo.ErrNotFound
}

var _ forgetRepo = (*forgetFake)(nil)

// TestForgetWithoutRepository forgets by policy on a forgetRepo fake: of
// three snapshots --keep-last 1 keeps the newest, and the oldest, the
// newest that passed a verification; only the middle one is recorded in
// the audit trail and its manifest deleted.
func TestForgetWithoutRepository(t *testing.T) {
	now := time.Now()
	old, mid, cur := pathSnapshot(1, now.Add(-3*time.Hour)), pathSnapshot(2, now.Add(-2*time.Hour)), pathSnapshot(3, now.Add(-time.Hour))
	f := &forgetFake{files: files{be: mem.New("forget")}, ix: newIndex(t), sns: []*repo.Snapshot{old, mid, cur}}
	f.recs = []repo.AuditRecord{{Command: "verify", Snapshot: old.ID.String(), Level: "L2", Result: repo.AuditOK, Time: now}}
	for _, sn := range f.sns {
		write(t, f.be, repo.FileName(repo.DirSnapshots, sn.ID), sn)
	}
	res, err := Forget(context.Background(), f, ForgetOptions{All: true, Policy: RetentionPolicy{Last: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []string{mid.ID.String()}) {
		t.Fatalf("removed %v, want only %s", res.Removed, mid.ID)
	}
	if len(res.Groups) != 1 || len(res.Groups[0].Keep) != 2 || !slices.Contains(res.Groups[0].Keep[1].Reasons, KeptNewestVerified+" (L2 passed)") {
		t.Fatalf("groups %+v", res.Groups)
	}
	for sn, want := range map[*repo.Snapshot]bool{old: true, mid: false, cur: true} {
		if got := has(f.be, repo.FileName(repo.DirSnapshots, sn.ID)); got != want {
			t.Errorf("manifest of %s present %v, want %v", sn.ShortID(), got, want)
		}
	}
	if n := len(f.recs); n != 2 || f.recs[1].Command != "forget" || f.recs[1].Snapshot != mid.ID.String() {
		t.Fatalf("audit trail %+v", f.recs)
	}
}

// tagFake is a tagRepo.
type tagFake struct {
	files
	saver
	unheld
	appender
	ix  *index.Index
	sns []*repo.Snapshot
}

func (f *tagFake) Index() *index.Index { return f.ix }
func (f *tagFake) Snapshots(ctx context.Context) ([]*repo.Snapshot, error) {
	return f.sns, nil
}
func (f *tagFake) FindSnapshot(ctx context.Context, ref string) (*repo.Snapshot, error) {
	for _, sn := range f.sns {
		if strings.HasPrefix(sn.ID.String(), ref) {
			return sn, nil
		}
	}
	return nil, repo.ErrNotFound
}

func (f *tagFake) SaveSnapshot(ctx context.Context, m *repo.Manifest) (*repo.Snapshot, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sn := &repo.Snapshot{ID: chunk.ID(blake3.Sum256(b)), Manifest: *m}
	f.sns = append(f.sns, sn)
	return sn, f.be.Write(ctx, repo.FileName(repo.DirSnapshots, sn.ID), bytes.NewReader(b), int64(len(b)))
}

var _ tagRepo = (*tagFake)(nil)

// TestRetagWithoutRepository retags a damaged snapshot on a tagRepo fake:
// the manifest is written anew with the tag added and an original: tag,
// the damage marker is carried over to the new ID, the change is audited
// and the old manifest deleted.
func TestRetagWithoutRepository(t *testing.T) {
	ctx := context.Background()
	be := mem.New("tag")
	sn := pathSnapshot(1, time.Now().Add(-time.Hour))
	sn.Tags = []string{"a"}
	f := &tagFake{files: files{be: be}, saver: saver{out: be}, ix: newIndex(t), sns: []*repo.Snapshot{sn}}
	write(t, be, repo.FileName(repo.DirSnapshots, sn.ID), sn)
	write(t, be, "damaged/"+strings.Repeat("5", 64), DamageRecord{Version: 1, Time: time.Now(), Snapshot: sn.ID.String(), Reason: "pack lost", LostBytes: 7})
	res, err := Retag(ctx, f, TagOptions{Refs: []string{sn.ID.String()[:8]}, Edit: repo.TagEdit{Add: []string{"b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || len(f.sns) != 2 {
		t.Fatalf("changed %+v", res.Changed)
	}
	nsn := f.sns[1]
	ch := res.Changed[0]
	if ch.Old != sn.ID.String() || ch.New != nsn.ID.String() || !slices.Equal(ch.Tags, []string{"a", "b", repo.OriginalTagPrefix + sn.ID.String()}) {
		t.Fatalf("change %+v", ch)
	}
	if has(be, repo.FileName(repo.DirSnapshots, sn.ID)) || !has(be, repo.FileName(repo.DirSnapshots, nsn.ID)) {
		t.Fatal("the old manifest is still there, or the new one is not")
	}
	dmg, err := DamagedSnapshots(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := dmg[nsn.ID.String()]; !ok || d.LostBytes != 7 || !strings.HasPrefix(d.Reason, "pack lost (marked on snapshot "+sn.ShortID()) {
		t.Fatalf("damage markers %+v", dmg)
	}
	if len(f.recs) != 1 || f.recs[0].Command != "tag" || f.recs[0].Snapshot != sn.ID.String() {
		t.Fatalf("audit trail %+v", f.recs)
	}
}

// streamer is a blobStreamer over the plaintexts it holds.
type streamer struct {
	blobs map[chunk.ID][]byte
}

func (s *streamer) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	for i, id := range ids {
		b := repo.StreamBlob{Index: i, ID: id, Data: s.blobs[id]}
		if b.Data == nil {
			b.Err = &repo.CorruptError{What: "blob " + id.Short(), Detail: "not in the fake"}
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// RefTargets: the fake holds no delta or member blob.
func (s *streamer) RefTargets(ctx context.Context, space string, ids []chunk.ID, locs []index.Location) ([]chunk.ID, []error) {
	errs := make([]error, len(ids))
	for i, id := range ids {
		errs[i] = &repo.CorruptError{What: "blob " + id.Short(), Detail: "not a delta in the fake"}
	}
	return make([]chunk.ID, len(ids)), errs
}

// events records, in order, what an operation changed.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

// pruneFake is a pruneRepo.
type pruneFake struct {
	files
	saver
	streamer
	unheld
	ev      *events
	ix      *index.Index
	sns     map[chunk.ID]*repo.Snapshot
	idx     map[string][]index.PackInfo // index files
	written []index.PackInfo
}

func (f *pruneFake) ChunkKey(space string) chunk.Key { return chunk.DeriveKey([32]byte{3}, space) }
func (f *pruneFake) Config() repo.Config             { return repo.Config{} }
func (f *pruneFake) Index() *index.Index             { return f.ix }
func (f *pruneFake) Locks(ctx context.Context) ([]repo.LockStatus, error) {
	return nil, nil
}
func (f *pruneFake) ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error) {
	var out []chunk.ID
	for id := range f.sns {
		out = append(out, id)
	}
	return out, nil
}
func (f *pruneFake) LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error) {
	return f.sns[id], nil
}
func (f *pruneFake) LoadIndexFiles(ctx context.Context, names []string, tolerant bool) ([]index.File, []string, error) {
	var out []index.File
	for _, n := range names {
		out = append(out, index.File{Name: n, Packs: f.idx[n]})
	}
	return out, nil, nil
}
func (f *pruneFake) ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error) {
	return index.PackInfo{}, errors.New("prune read a pack header it did not need")
}
func (f *pruneFake) NewPacker(ctx context.Context, space string) *repo.Packer { return nil }
func (f *pruneFake) WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error {
	f.written = append(f.written, infos...)
	f.ev.add("write index")
	return done("index/new")
}
func (f *pruneFake) ResetIndex() error              { f.ev.add("reset index"); return nil }
func (f *pruneFake) Sync(ctx context.Context) error { f.ev.add("sync"); return nil }
func (f *pruneFake) ForgetLocations()               { f.ev.add("forget locations") }

var _ pruneRepo = (*pruneFake)(nil)

// TestPruneWithoutRepository prunes a pruneRepo fake holding one snapshot
// whose tree and chunk are in pack A, and an unused chunk alone in pack B,
// both listed by one index file: B and the index file are deleted, A is
// described in a new index file first, then the local cache is reset.
func TestPruneWithoutRepository(t *testing.T) {
	ctx := context.Background()
	be := mem.New("prune")
	ev := &events{}
	be.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
		if op == mem.OpDelete {
			ev.add("delete " + name)
		}
		return mem.Fault{}
	})
	d1, d2, root := chunk.ID{0xd1}, chunk.ID{0xd2}, chunk.ID{0xee}
	tree, err := repo.EncodeTree(&repo.Tree{Version: 1, Nodes: []*repo.Node{{Name: "a", Type: repo.NodeFile, Mode: 0o644, Size: 5, Content: []chunk.ID{d1}, BLAKE3: &repo.Hash{}}}})
	if err != nil {
		t.Fatal(err)
	}
	a := index.PackInfo{ID: [32]byte{0xa}, Size: 100, Space: repo.PathsSpace, Blobs: []index.BlobInfo{
		{ID: root, Type: uint8(repo.TreeBlob), Offset: 0, Length: 40, RawLength: uint32(len(tree))},
		{ID: d1, Type: uint8(repo.DataBlob), Offset: 40, Length: 40, RawLength: 5}}}
	b := index.PackInfo{ID: [32]byte{0xb}, Size: 100, Space: repo.PathsSpace, Blobs: []index.BlobInfo{{ID: d2, Type: uint8(repo.DataBlob), Offset: 0, Length: 80, RawLength: 5}}}
	idxName := repo.FileName(repo.DirIndex, [32]byte{0x1d})
	for _, p := range []index.PackInfo{a, b} {
		write(t, be, repo.PackName(p.ID), make([]byte, 100))
	}
	write(t, be, idxName, []byte("{}"))
	sn := pathSnapshot(1, time.Now().Add(-time.Hour))
	f := &pruneFake{files: files{be: be}, saver: saver{out: be}, streamer: streamer{blobs: map[chunk.ID][]byte{root: tree}}, ev: ev,
		ix: newIndex(t), sns: map[chunk.ID]*repo.Snapshot{sn.ID: sn}, idx: map[string][]index.PackInfo{idxName: {a, b}}}

	dry, err := Prune(ctx, f, PruneOptions{DryRun: true, MaxUnused: DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if dry.PacksDeleted != 1 || dry.PacksKept != 1 || dry.BytesFreed != 100 || len(ev.log) != 0 {
		t.Fatalf("dry run: %+v, changes %v", dry, ev.log)
	}
	res, err := Prune(ctx, f, PruneOptions{MaxUnused: DefaultMaxUnused})
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksDeleted != 1 || res.PacksKept != 1 || res.IndexFilesDeleted != 1 || res.IndexFilesWritten != 1 || res.BytesFreed != 100 || res.BlobsUsed != 2 {
		t.Fatalf("prune: %+v", res)
	}
	want := []string{"write index", "sync", "forget locations", "forget locations", "delete " + idxName, "delete " + repo.PackName(b.ID)}
	if !slices.Equal(ev.log, want) {
		t.Fatalf("changes\n%q\nwant\n%q", ev.log, want)
	}
	if len(f.written) != 1 || f.written[0].ID != a.ID || len(f.written[0].Blobs) != 2 {
		t.Fatalf("new index file describes %+v, want pack A", f.written)
	}
	if !has(be, repo.PackName(a.ID)) || has(be, repo.PackName(b.ID)) {
		t.Fatal("pack A deleted, or pack B kept")
	}
}

// checkFake is a checkRepo.
type checkFake struct {
	files
	saver
	streamer
	unheld
	ix      *index.Index
	headers map[[32]byte]index.PackInfo
}

func (f *checkFake) ChunkKey(space string) chunk.Key { return chunk.DeriveKey([32]byte{3}, space) }
func (f *checkFake) Index() *index.Index             { return f.ix }
func (f *checkFake) AuditLog(ctx context.Context, since time.Time) ([]repo.AuditRecord, []error, error) {
	return nil, nil, nil
}
func (f *checkFake) Locks(ctx context.Context) ([]repo.LockStatus, error) {
	return nil, nil
}
func (f *checkFake) Snapshots(ctx context.Context) ([]*repo.Snapshot, error) { return nil, nil }
func (f *checkFake) SnapshotsOf(ctx context.Context, space string) ([]*repo.Snapshot, error) {
	return nil, nil
}
func (f *checkFake) ListSnapshotIDs(ctx context.Context) ([]chunk.ID, error) { return nil, nil }
func (f *checkFake) LoadSnapshotFile(ctx context.Context, id chunk.ID) (*repo.Snapshot, error) {
	return nil, repo.ErrNotFound
}
func (f *checkFake) LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	return nil, repo.ErrNotFound
}
func (f *checkFake) ReadPackHeader(ctx context.Context, id [32]byte, size int64) (index.PackInfo, error) {
	if h, ok := f.headers[id]; ok {
		return h, nil
	}
	return index.PackInfo{}, repo.Corruptf("pack "+repo.ShortHex(id), "no header")
}
func (f *checkFake) WriteIndexFiles(ctx context.Context, infos []index.PackInfo, done func(name string) error) error {
	return errors.New("check wrote index files without --repair")
}
func (f *checkFake) RebuildIndex(ctx context.Context) (*repo.RebuildResult, error) {
	return nil, errors.New("check rebuilt the index without --repair")
}
func (f *checkFake) ResetIndex() error              { return errors.New("check reset the index without --repair") }
func (f *checkFake) Sync(ctx context.Context) error { return nil }

var _ checkRepo = (*checkFake)(nil)

// TestCheckWithoutRepository checks a checkRepo fake holding one pack
// listed by one index file: intact, no finding; with the header and the
// index file disagreeing, and with the pack gone, the errors name the pack
// and the index file.
func TestCheckWithoutRepository(t *testing.T) {
	ctx := context.Background()
	d := chunk.ID{0xd1}
	p := index.PackInfo{ID: [32]byte{0xa}, Size: 100, Space: repo.PathsSpace, Blobs: []index.BlobInfo{{ID: d, Type: uint8(repo.DataBlob), Offset: 0, Length: 80, RawLength: 5}}}
	idxName := repo.FileName(repo.DirIndex, [32]byte{0x1d})
	run := func(header index.PackInfo, packThere bool) (*CheckReport, *checkFake) {
		be := mem.New("check")
		if packThere {
			write(t, be, repo.PackName(p.ID), make([]byte, 100))
		}
		file := fmt.Sprintf(`{"version":1,"packs":[{"id":%q,"size":100,"space":%q,"blobs":[{"id":%q,"t":%d,"o":0,"l":80,"r":5}]}]}`,
			chunk.ID(p.ID).String(), p.Space, d.String(), repo.DataBlob)
		write(t, be, idxName, []byte(file))
		ix := newIndex(t)
		if err := ix.AddFile(idxName, []index.PackInfo{p}); err != nil {
			t.Fatal(err)
		}
		f := &checkFake{files: files{be: be}, saver: saver{out: be}, ix: ix, headers: map[[32]byte]index.PackInfo{p.ID: header}}
		rep, err := Check(ctx, f, CheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rep, f
	}
	lines := func(rep *CheckReport) string {
		var b strings.Builder
		for _, f := range rep.Findings {
			fmt.Fprintf(&b, "%s %s: %s\n", f.Severity, f.What, f.Message)
		}
		return b.String()
	}
	pack, file := "pack "+repo.ShortHex(p.ID), repo.ShortHex([32]byte{0x1d})

	rep, _ := run(p, true)
	if rep.Errors() != 0 || len(rep.Findings) != 0 || rep.Figures["packs"] != 1 || rep.Figures["index_files"] != 1 || rep.Figures["blobs"] != 1 {
		t.Fatalf("intact: findings\n%sfigures %v", lines(rep), rep.Figures)
	}

	other := p
	other.Blobs = []index.BlobInfo{p.Blobs[0]}
	other.Blobs[0].Length = 70
	rep, _ = run(other, true)
	if got, want := lines(rep), "error "+pack+": header and index file "+file+" disagree: blob "+d.Short()+" differs\n"; got != want || rep.Errors() != 1 {
		t.Fatalf("header differs: findings\n%s\nwant\n%s", got, want)
	}

	rep, f := run(p, false)
	want := "error " + pack + ": listed by index file " + file + " but missing from the repository (1 blob)\n" +
		"warning local index " + f.ix.Path() + ": lists 1 pack that does not exist (check --repair rebuilds it)\n"
	if got := lines(rep); got != want || rep.Errors() != 1 {
		t.Fatalf("pack gone: findings\n%s\nwant\n%s", got, want)
	}
}
