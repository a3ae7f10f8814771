package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo"
	"memento/repo/backend/mem"
	"memento/repo/restore"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// Each level runs here against a fake that implements only the methods of
// the level's interface (no embedded interface): that it compiles is the
// proof the level needs no more of the storage core.

// l1Fake is a manifestRepo: a backend with the packs, a local index, and
// the trees by ID.
type l1Fake struct {
	be    *mem.Backend
	ix    *index.Index
	trees map[chunk.ID]*repo.Tree
}

func (f *l1Fake) Backend() repo.Backend { return f.be }
func (f *l1Fake) Index() *index.Index   { return f.ix }
func (f *l1Fake) LoadTree(ctx context.Context, space string, id chunk.ID) (*repo.Tree, error) {
	if t, ok := f.trees[id]; ok {
		return t, nil
	}
	return nil, repo.ErrNotFound
}

var _ manifestRepo = (*l1Fake)(nil)

// streamFake is a blobStreamer: it delivers the plaintexts it holds, in the
// order asked, and an error for a blob it has none of.
type streamFake struct {
	blobs map[chunk.ID][]byte
	asked []chunk.ID
}

func (f *streamFake) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	for i, id := range ids {
		f.asked = append(f.asked, id)
		b := repo.StreamBlob{Index: i, ID: id, Loc: opts.Locs[i], RunBytes: int64(opts.Locs[i].Length), RunBlobs: 1}
		if d, ok := f.blobs[id]; ok {
			c := bytes.Clone(d)
			b.Data, b.Pooled = c, &c
		} else {
			b.Err = errors.New("pack " + repo.ShortHex(opts.Locs[i].Pack) + ": blob " + id.Short() + " does not authenticate")
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

var _ blobStreamer = (*streamFake)(nil)

// walFake is a walRepo: the record files are JSON on a mem backend.
type walFake struct {
	*streamFake
	be  *mem.Backend
	ix  *index.Index
	key chunk.Key
}

func (f *walFake) Backend() repo.Backend           { return f.be }
func (f *walFake) Index() *index.Index             { return f.ix }
func (f *walFake) ChunkKey(space string) chunk.Key { return f.key }
func (f *walFake) LoadFile(ctx context.Context, name string, kind string, v any) error {
	b, ok := f.be.Bytes(name)
	if !ok {
		return repo.ErrNotFound
	}
	return json.Unmarshal(b, v)
}

var _ walRepo = (*walFake)(nil)

func openIndex(t *testing.T, packs ...index.PackInfo) *index.Index {
	t.Helper()
	ix, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) > 0 {
		if err := ix.AddFile("index/"+strings.Repeat("0", 64), packs); err != nil {
			t.Fatal(err)
		}
	}
	return ix
}

func putFile(t *testing.T, be *mem.Backend, name string, b []byte) {
	t.Helper()
	if err := be.Write(context.Background(), name, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

func newVerdict() *Verdict { return &Verdict{Figures: map[string]float64{}} }

func findings(vd *Verdict) string {
	var b strings.Builder
	for _, f := range vd.Findings {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// oneFile is a snapshot of plain paths holding one file "a" of one chunk
// in one pack of 100 bytes.
type oneFile struct {
	data  []byte
	cid   chunk.ID
	root  chunk.ID
	pack  [32]byte
	sn    *repo.Snapshot
	tree  *repo.Tree
	pinfo index.PackInfo
}

func newOneFile() *oneFile {
	o := &oneFile{data: []byte("hello, world"), root: chunk.ID{9}, pack: [32]byte{7}}
	o.cid = chunk.DeriveKey([32]byte{1}, repo.PathsSpace).Sum(o.data)
	sum := repo.Hash(blake3.Sum256(o.data))
	o.tree = &repo.Tree{Version: 1, Nodes: []*repo.Node{{Name: "a", Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(o.data)), Content: []chunk.ID{o.cid}, BLAKE3: &sum}}}
	o.sn = &repo.Snapshot{ID: chunk.ID{1}, Manifest: repo.Manifest{Version: 1, Time: time.Now().Add(-time.Hour), Host: "h", Paths: []string{"/src"}, Root: o.root,
		Summary: repo.Summary{Files: 1, Bytes: uint64(len(o.data)), Chunks: 1}}}
	o.pinfo = index.PackInfo{ID: o.pack, Size: 100, Space: repo.PathsSpace,
		Blobs: []index.BlobInfo{{ID: o.cid, Type: uint8(repo.DataBlob), Offset: 10, Length: 40, RawLength: uint32(len(o.data))}}}
	return o
}

// TestManifestL1WithoutRepository runs L1 (NewVerifier, Manifest) on a
// manifestRepo fake: intact, it walks the one file and reports nothing; with
// the pack cut short, it reports the pack and the file it breaks; with the
// chunk gone from the index, the missing chunk.
func TestManifestL1WithoutRepository(t *testing.T) {
	ctx := context.Background()
	o := newOneFile()
	f := &l1Fake{be: mem.New("l1"), ix: openIndex(t, o.pinfo), trees: map[chunk.ID]*repo.Tree{o.root: o.tree}}
	putFile(t, f.be, repo.PackName(o.pack), make([]byte, 100))

	walk := func() (*SnapWalk, *Verdict) {
		v, err := NewVerifier(ctx, f, VerifyOptions{Level: L1})
		if err != nil {
			t.Fatal(err)
		}
		vd := newVerdict()
		w, err := v.Manifest(ctx, o.sn, vd)
		if err != nil {
			t.Fatal(err)
		}
		return w, vd
	}
	w, vd := walk()
	if len(vd.Findings) != 0 || len(w.Files) != 1 || w.Files[0].Rel != "a" || vd.Figures["packs"] != 1 || vd.Figures["chunks"] != 1 {
		t.Fatalf("intact: findings %q, files %v, figures %v", findings(vd), w.Files, vd.Figures)
	}

	if err := f.be.Damage(repo.PackName(o.pack), func(b []byte) []byte { return b[:30] }); err != nil {
		t.Fatal(err)
	}
	w, vd = walk()
	want := "L1 pack " + repo.ShortHex(o.pack) + ": 30 bytes, the index says 100 (truncated or replaced) (holds 1 chunk of this snapshot)\n" +
		"L1 file a: 1 of its 1 chunk is missing or in a damaged pack\n"
	if got := findings(vd); got != want || !w.Broken["a"] {
		t.Fatalf("truncated pack: findings\n%s\nwant\n%s(broken %v)", got, want, w.Broken)
	}

	f.ix = openIndex(t) // an empty index
	if err := f.be.Delete(ctx, repo.PackName(o.pack)); err != nil {
		t.Fatal(err)
	}
	putFile(t, f.be, repo.PackName(o.pack), make([]byte, 100))
	w, vd = walk()
	want = "L1 manifest " + o.sn.ShortID() + ": 1 chunk is not in the index\n" +
		"L1 file a: 1 of its 1 chunk is missing or in a damaged pack\n"
	if got := findings(vd); got != want || !w.Missing[o.cid] {
		t.Fatalf("chunk not indexed: findings\n%s\nwant\n%s", got, want)
	}
}

// TestDataL2WithoutRepository runs L2 (data) on a blobStreamer fake over a
// hand-made walk: the right bytes hash to the tree's BLAKE3; other bytes of
// the same length are reported against the file; an unreadable blob is
// reported against its pack and breaks the file.
func TestDataL2WithoutRepository(t *testing.T) {
	ctx := context.Background()
	o := newOneFile()
	loc := index.Location{Pack: o.pack, Offset: 10, Length: 40, RawLength: uint32(len(o.data)), Type: uint8(repo.DataBlob)}
	run := func(blobs map[chunk.ID][]byte) (*Verdict, *streamFake) {
		s := &streamFake{blobs: blobs}
		opts := VerifyOptions{Level: L2}
		opts.defaults()
		v := &Verifier{blobs: s, opts: opts}
		w := &SnapWalk{sn: o.sn, space: repo.PathsSpace, Files: []WalkFile{{Rel: "a", Node: o.tree.Nodes[0]}},
			locs: map[chunk.ID]index.Location{o.cid: loc}, Missing: map[chunk.ID]bool{}, bad: map[[32]byte]string{}, Broken: map[string]bool{}}
		vd := newVerdict()
		if err := v.data(ctx, w, vd, nil); err != nil {
			t.Fatal(err)
		}
		return vd, s
	}
	vd, s := run(map[chunk.ID][]byte{o.cid: o.data})
	if len(vd.Findings) != 0 || vd.Figures["files_hashed"] != 1 || vd.Figures["chunks_verified"] != 1 || vd.Figures["packs_read"] != 1 ||
		len(s.asked) != 1 || s.asked[0] != o.cid {
		t.Fatalf("intact: findings %q, figures %v, asked %v", findings(vd), vd.Figures, s.asked)
	}

	other := bytes.ToUpper(o.data)
	vd, _ = run(map[chunk.ID][]byte{o.cid: other})
	sum := blake3.Sum256(other)
	want := "L2 file a: content BLAKE3 " + hex.EncodeToString(sum[:])[:16] + " does not match the tree's\n"
	if got := findings(vd); got != want || vd.Figures["files_hashed"] != 0 {
		t.Fatalf("other bytes: findings\n%s\nwant\n%s", got, want)
	}

	vd, _ = run(nil)
	want = "L2 pack " + repo.ShortHex(o.pack) + ": blob " + o.cid.Short() + " does not authenticate\n" +
		"L2 file a: cannot be read whole: chunk " + o.cid.Short() + ": pack " + repo.ShortHex(o.pack) + ": blob " + o.cid.Short() + " does not authenticate\n"
	if got := findings(vd); got != want {
		t.Fatalf("unreadable blob: findings\n%s\nwant\n%s", got, want)
	}
}

// TestWALArchiveWithoutRepository runs the archived-WAL part of L2
// (walArchive) on a walRepo fake: the one segment that extends the
// snapshot is read and its BLAKE3 matches the record; a segment whose
// bytes differ, or whose pack is gone, is reported.
func TestWALArchiveWithoutRepository(t *testing.T) {
	ctx := context.Background()
	const space = "sp"
	key := chunk.DeriveKey([32]byte{2}, space)
	seg := []byte("one archived WAL segment's bytes")
	cid := key.Sum(seg)
	pack := [32]byte{5}
	sn := &repo.Snapshot{ID: chunk.ID{3}, Manifest: repo.Manifest{Space: space, Engram: &repo.EngramInfo{WALEnd: repo.WALPosition{Seq: 10}}}}
	rec := walarchive.WALSegmentRecord{Name: "wal-00000001.log", FirstSeq: 11, LastSeq: 12, FirstTS: 1, LastTS: 2, Entries: 2,
		Size: int64(len(seg)), Chunks: []walarchive.WALChunk{{ID: cid, Size: uint32(len(seg))}}, BLAKE3: repo.Hash(blake3.Sum256(seg)), Sealed: true}
	run := func(data []byte, packListed bool) *Verdict {
		f := &walFake{streamFake: &streamFake{blobs: map[chunk.ID][]byte{cid: data}}, be: mem.New("wal"), key: key,
			ix: openIndex(t, index.PackInfo{ID: pack, Size: 100, Space: space, Blobs: []index.BlobInfo{{ID: cid, Type: uint8(repo.DataBlob), Length: 60, RawLength: uint32(len(seg))}}})}
		file, err := json.Marshal(walarchive.ArchiveFile{Version: walarchive.WALArchiveVersion, Space: space, Host: "h", Segments: []walarchive.WALSegmentRecord{rec}})
		if err != nil {
			t.Fatal(err)
		}
		putFile(t, f.be, walarchive.LineDir(f, walarchive.Legacy(space))+"/"+strings.Repeat("ab", 32), file)
		opts := VerifyOptions{Level: L2}
		opts.defaults()
		v := &Verifier{wal: f, opts: opts, packSizes: map[[32]byte]int64{}}
		if packListed {
			v.packSizes[pack] = 100
		}
		vd := newVerdict()
		if err := v.walArchive(ctx, sn, vd); err != nil {
			t.Fatal(err)
		}
		return vd
	}
	what := "L2 archived WAL segment wal-00000001.log (seq 11..12): "
	if vd := run(seg, true); len(vd.Findings) != 0 || vd.Figures["wal_archive_segments"] != 1 || vd.Figures["wal_archive_bytes"] != 60 {
		t.Fatalf("intact: findings %q, figures %v", findings(vd), vd.Figures)
	}
	if got, want := findings(run(bytes.ToUpper(seg), true)), what+"BLAKE3 of its 32 bytes differs from the record\n"; got != want {
		t.Fatalf("other bytes: findings\n%s\nwant\n%s", got, want)
	}
	want := what + "chunk 0 (" + cid.Short() + ") is in pack " + repo.ShortHex(pack) + ", which is missing from the repository\n"
	if got := findings(run(seg, false)); got != want {
		t.Fatalf("pack gone: findings\n%s\nwant\n%s", got, want)
	}
}

// TestRecoveryL4WithoutRepository runs L4 (recovery) with a restore
// function in place of the repository: it restores into a temporary
// directory it removes afterwards, replays the restored WAL and compares
// the state digest with the manifest's; a failed restore is one finding.
func TestRecoveryL4WithoutRepository(t *testing.T) {
	ctx := context.Background()
	empty := walreplay.NewState().Digest()
	var targets []string
	restoreEmpty := func(ctx context.Context, sn *repo.Snapshot, target string, opts restore.RestoreOptions) (*restore.RestoreResult, error) {
		targets = append(targets, target)
		if err := os.MkdirAll(filepath.Join(target, "spaces", sn.Space, "wal"), 0o755); err != nil {
			return nil, err
		}
		return &restore.RestoreResult{Files: 0}, nil
	}
	run := func(digest string, fn restoreFunc) *Verdict {
		opts := VerifyOptions{Level: L4, TempDir: t.TempDir(), Samples: 1}
		opts.defaults()
		v := &Verifier{restore: fn, opts: opts}
		sn := &repo.Snapshot{ID: chunk.ID{4}, Manifest: repo.Manifest{Space: "sp", Engram: &repo.EngramInfo{StateDigest: digest}}}
		w := &SnapWalk{sn: sn, space: "sp", types: map[string]string{"spaces/sp/wal": repo.NodeDir}}
		vd := newVerdict()
		if err := v.recovery(ctx, w, vd); err != nil {
			t.Fatal(err)
		}
		if ents, err := os.ReadDir(opts.TempDir); err != nil || len(ents) != 0 {
			t.Fatalf("temporary directory left behind: %v %v", ents, err)
		}
		return vd
	}

	vd := run(hex.EncodeToString(empty[:]), restoreEmpty)
	if strings.Contains(findings(vd), "L4") || vd.Query == nil || vd.Query.Digest != hex.EncodeToString(empty[:]) {
		t.Fatalf("matching digest: findings %q, query %+v", findings(vd), vd.Query)
	}
	if len(targets) != 1 || filepath.Base(targets[0]) != "data" {
		t.Fatalf("restored into %v, want one temporary .../data", targets)
	}

	recorded := strings.Repeat("ab", 32)
	vd = run(recorded, restoreEmpty)
	want := "L4 space sp: state digest (v1) at seq 0 is " + hex.EncodeToString(empty[:]) + ", the backup recorded " + recorded
	if got := findings(vd); !strings.Contains(got, want) {
		t.Fatalf("other digest: findings\n%s\nwant a line\n%s", got, want)
	}

	vd = run(recorded, func(context.Context, *repo.Snapshot, string, restore.RestoreOptions) (*restore.RestoreResult, error) {
		return nil, errors.New("pack 1a2b3c4d: missing")
	})
	if got, want := findings(vd), "L4 restore: pack 1a2b3c4d: missing\n"; got != want {
		t.Fatalf("failed restore: findings\n%s\nwant\n%s", got, want)
	}
}

// L1's shape check of the state digest: a kind this binary does not know,
// or a kind without a digest, is a finding; the known kinds are not.
func TestManifestStateDigestKind(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	for _, c := range []struct {
		kind, digest, want string
	}{
		{"", digest, ""},
		{walreplay.DigestKindLtHash, digest, ""},
		{"lthash32", digest, `L1 manifest 04000000: state digest kind "lthash32" is unknown to this binary (it knows v1 and lthash16)`},
		{walreplay.DigestKindLtHash, "", `L1 manifest 04000000: state digest kind "lthash16" without a state digest`},
	} {
		sn := &repo.Snapshot{ID: chunk.ID{4}, Manifest: repo.Manifest{Space: "sp", Root: chunk.ID{1}, Time: time.Now(),
			Engram: &repo.EngramInfo{StateDigest: c.digest, StateDigestKind: c.kind}}}
		vd := newVerdict()
		checkManifestFields(sn, vd)
		if got := strings.TrimSuffix(findings(vd), "\n"); got != c.want {
			t.Errorf("kind %q digest %q: findings %q, want %q", c.kind, c.digest, got, c.want)
		}
	}
}
