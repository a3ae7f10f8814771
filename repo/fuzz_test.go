package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
	"memento/repo/backend/local"
)

// fuzzSeedRepo makes a real repository with one snapshot of a small tree
// (src/a of 100 KiB in several packs, src/d/{b,empty,link}), the source of
// seed inputs taken from real encodings. Package repo cannot run a backup (it
// would import repo/backup), so the snapshot is written with the core's own
// primitives, as a backup writes it: data and tree blobs through a Packer,
// an index file, a signed manifest.
func fuzzSeedRepo(f *testing.F) *testRepo {
	f.Helper()
	tr := newTestRepo(f, InitOptions{PackSize: 64 << 10})
	ctx := context.Background()
	key := tr.ChunkKey("")
	p := tr.NewPacker(ctx, "")
	add := func(t BlobType, raw []byte) chunk.ID {
		id := key.Sum(raw)
		if !p.Claim(id) {
			return id
		}
		stored, compressed := chunk.Compress(nil, raw, chunk.DefaultLevel)
		var flags uint8
		if compressed {
			flags = FlagCompressed
		} else {
			stored = raw
		}
		if err := p.Add(t, id, flags, len(raw), stored); err != nil {
			f.Fatal(err)
		}
		return id
	}
	file := func(name string, data []byte, mode uint32) *Node {
		h := Hash(blake3.Sum256(data))
		n := &Node{Name: name, Type: NodeFile, Mode: mode, Size: uint64(len(data)), BLAKE3: &h, MTimeNS: 1}
		for off := 0; off < len(data); off += 32 << 10 {
			n.Content = append(n.Content, add(DataBlob, data[off:min(off+32<<10, len(data))]))
		}
		return n
	}
	tree := func(nodes ...*Node) chunk.ID {
		b, err := EncodeTree(&Tree{Nodes: nodes})
		if err != nil {
			f.Fatal(err)
		}
		return add(TreeBlob, b)
	}
	dir := func(name string, nodes ...*Node) *Node {
		id := tree(nodes...)
		return &Node{Name: name, Type: NodeDir, Mode: 0o755, Subtree: &id, MTimeNS: 1}
	}
	a := make([]byte, 100<<10)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(a)
	root := tree(dir("src", file("a", a, 0o644), dir("d", file("b", []byte("bee"), 0o600), file("empty", nil, 0o600),
		&Node{Name: "link", Type: NodeSymlink, Mode: 0o777, LinkTarget: "../a", MTimeNS: 1})))
	packs, _, err := p.Flush()
	if err != nil {
		f.Fatal(err)
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		f.Fatal(err)
	}
	if _, err := tr.SaveSnapshot(ctx, &Manifest{Time: time.Now().UTC(), Host: "fuzz", Paths: []string{"/src"}, Root: root}); err != nil {
		f.Fatal(err)
	}
	return tr
}

// FuzzDecodePackHeader feeds arbitrary trailers and opened headers to the pack
// decoders. Whatever they accept must be self-consistent: blobs within the
// data, contiguous, of known types, and re-encoding gives the same bytes.
func FuzzDecodePackHeader(f *testing.F) {
	tr := fuzzSeedRepo(f)
	for _, p := range tr.packFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		trailer := b[len(b)-packTrailerSize:]
		hl, err := decodePackTrailer(trailer, int64(len(b)))
		if err != nil {
			f.Fatal(err)
		}
		hdr, err := tr.seal.open(nil, b[int64(len(b))-packTrailerSize-hl:len(b)-packTrailerSize], []byte(packHeaderAD))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(hdr, int64(len(b))-packTrailerSize-hl, trailer, int64(len(b)))
	}
	two := []index.BlobInfo{{Type: 1, Flags: 1, ID: chunk.ID{1}, Length: 10, RawLength: 20}, {Type: 2, ID: chunk.ID{2}, Length: 5, RawLength: 5}}
	f.Add(encodePackHeader("alpha", two), int64(15), encodePackTrailer(100), int64(200))
	f.Add(encodePackHeader("", nil), int64(0), encodePackTrailer(1), int64(13))
	f.Add([]byte{1}, int64(0), []byte("MPAK"), int64(12))

	f.Fuzz(func(t *testing.T, hdr []byte, dataLen int64, trailer []byte, packSize int64) {
		if hl, err := decodePackTrailer(trailer, packSize); err == nil {
			if hl <= 0 || hl > packSize-packTrailerSize {
				t.Fatalf("trailer accepted header length %d in a pack of %d bytes", hl, packSize)
			}
			again := encodePackTrailer(int(hl))
			if !bytes.Equal(again[:6], trailer[:6]) || !bytes.Equal(again[8:], trailer[8:]) {
				t.Fatalf("trailer %x re-encodes as %x", trailer, again)
			}
		}
		space, blobs, err := decodePackHeader(hdr, dataLen)
		if err != nil {
			return
		}
		var off int64
		for i, b := range blobs {
			if int64(b.Offset) != off {
				t.Fatalf("blob %d at offset %d, want %d", i, b.Offset, off)
			}
			if b.Type != uint8(DataBlob) && b.Type != uint8(TreeBlob) || b.Length == 0 || b.Length > MaxBlobSize || b.RawLength > MaxBlobSize {
				t.Fatalf("blob %d accepted: %+v", i, b)
			}
			off += int64(b.Length)
		}
		if off != dataLen {
			t.Fatalf("blobs cover %d of %d bytes", off, dataLen)
		}
		if again := encodePackHeader(space, blobs); !bytes.Equal(again, hdr) {
			t.Fatalf("header %x re-encodes as %x", hdr, again)
		}
	})
}

// FuzzDecodeTree feeds arbitrary bytes to the tree decoder, which guards
// restore against hostile names. An accepted tree has only safe, sorted,
// unique names and consistent nodes, and survives a re-encode unchanged.
func FuzzDecodeTree(f *testing.F) {
	tr := fuzzSeedRepo(f)
	sns, err := tr.Snapshots(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	var walk func(id chunk.ID)
	walk = func(id chunk.ID) {
		b, err := tr.ReadBlob(context.Background(), "", TreeBlob, id)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		t, err := DecodeTree(b)
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range t.Nodes {
			if n.Subtree != nil {
				walk(*n.Subtree)
			}
		}
	}
	walk(sns[0].Root)
	f.Add([]byte(`{"v":1,"nodes":[{"name":"../x","type":"file","blake3":"` + Hash{}.String() + `"}]}`))
	f.Add([]byte(`{"v":1,"nodes":[{"name":"a","type":"dir","subtree":"` + chunk.ID{}.String() + `"},{"name":"a","type":"symlink","link_target":"/"}]}`))
	f.Add([]byte(`{"v":2,"nodes":[]}`))
	f.Add([]byte(`{"v":3,"nodes":[]}`))
	f.Add([]byte(`{"v":2,"nodes":[{"name":"d","type":"chardev","mode":438,"rdev":259},{"name":"f","type":"fifo","xattrs":[{"name":"user.a","value":"eA=="}]},` +
		`{"name":"h","type":"file","blake3":"` + Hash{}.String() + `","inode":7,"device_id":2049,"links":2},{"name":"s","type":"socket"}]}`))
	f.Add([]byte(`{"v":1,"nodes":[{"name":"f","type":"fifo"}]}`))
	f.Add([]byte(`{"v":2,"nodes":[{"name":"f","type":"fifo","xattrs":[]}]}`))
	f.Add([]byte(`{"v":1,"nodes":[null]}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := DecodeTree(b)
		if err != nil {
			return
		}
		for i, n := range tree.Nodes {
			if err := ValidName(n.Name); err != nil {
				t.Fatalf("accepted unsafe name: %v", err)
			}
			if i > 0 && tree.Nodes[i-1].Name >= n.Name {
				t.Fatalf("accepted unsorted names %q, %q", tree.Nodes[i-1].Name, n.Name)
			}
			switch n.Type {
			case NodeFile:
				if n.BLAKE3 == nil || n.Subtree != nil || (n.Size > 0 && len(n.Content) == 0) {
					t.Fatalf("accepted inconsistent file %+v", n)
				}
			case NodeDir:
				if n.Subtree == nil {
					t.Fatalf("accepted directory without subtree %+v", n)
				}
			case NodeSymlink:
				if n.LinkTarget == "" {
					t.Fatalf("accepted empty symlink %+v", n)
				}
			case NodeFIFO, NodeSocket, NodeCharDev, NodeBlockDev:
				if tree.Version < 2 || len(n.Content) > 0 || n.Subtree != nil || n.BLAKE3 != nil {
					t.Fatalf("accepted inconsistent %s %+v in a format-%d tree", n.Type, n, tree.Version)
				}
			default:
				t.Fatalf("accepted node type %q", n.Type)
			}
		}
		// A tree is written in the oldest format that holds it.
		was := tree.Version
		enc, err := EncodeTree(tree)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeTree(enc)
		if err != nil {
			t.Fatalf("re-encoded tree is refused: %v\n%s", err, enc)
		}
		if again.Version > was {
			t.Fatalf("a format-%d tree re-encodes as format %d", was, again.Version)
		}
		tree.Version = again.Version
		if !reflect.DeepEqual(tree, again) {
			t.Fatalf("tree changed in a re-encode:\n%s", enc)
		}
	})
}

// fuzzFileKinds are the metadata file kinds and what they decode into.
var fuzzFileKinds = []struct {
	kind, dir string
	new       func() any
}{
	{KindIndex, DirIndex, func() any { return new(IndexFile) }},
	{kindSnapshot, DirSnapshots, func() any { return new(Manifest) }},
	{kindLock, DirLocks, func() any { return new(lockInfo) }},
}

// fuzzSealers have fixed keys, so a crasher found once reproduces.
func fuzzSealers(t testing.TB) [2]sealer {
	a, err := newAEADSealer(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return [2]sealer{a, &macSealer{key: [32]byte{0x42}}}
}

// FuzzOpenFile feeds arbitrary bytes to the metadata envelope ("MMTO",
// version, sealed JSON) and, because a fuzzer cannot forge a MAC, also seals
// arbitrary plaintext properly so that the JSON decoding of index files,
// manifests and locks behind the seal is exercised too.
func FuzzOpenFile(f *testing.F) {
	sealers := fuzzSealers(f)
	tr := fuzzSeedRepo(f)
	ctx := context.Background()
	var packs []index.PackInfo
	err := tr.be.List(ctx, DirData, func(name string, size int64) error {
		pi, err := tr.ReadPackHeader(ctx, NameHash(name), size)
		packs = append(packs, pi)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	sns, err := tr.Snapshots(ctx)
	if err != nil {
		f.Fatal(err)
	}
	sn, err := tr.FindSnapshot(ctx, sns[0].ID.String())
	if err != nil {
		f.Fatal(err)
	}
	values := []any{toIndexFile(packs), &sn.Manifest, lockInfo{Version: 1, Host: "h", PID: 1, Time: time.Unix(1, 0).UTC()}}
	be, err := local.Create(filepath.Join(f.TempDir(), "r"))
	if err != nil {
		f.Fatal(err)
	}
	for si, s := range sealers {
		// Format 2: index files are written as compressed envelopes (version 2).
		r := &Repository{be: be, seal: s, cfg: Config{Version: FormatVersion}}
		for k, fk := range fuzzFileKinds {
			id, err := r.SaveFile(ctx, fk.dir, fk.kind, values[k])
			if err != nil {
				f.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(be.Location(), filepath.FromSlash(FileName(fk.dir, id))))
			if err != nil {
				f.Fatal(err)
			}
			plain, err := json.Marshal(values[k])
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw, uint8(k), plain, si == 1)
		}
	}
	f.Add([]byte("MMTO\x02"), uint8(0), []byte(`{"version":1,"packs":[{"blobs":null}]}`), false)

	f.Fuzz(func(t *testing.T, raw []byte, kind uint8, plain []byte, insecure bool) {
		fk := fuzzFileKinds[int(kind)%len(fuzzFileKinds)]
		s := sealers[0]
		if insecure {
			s = sealers[1]
		}
		r := &Repository{seal: s}
		name := FileName(fk.dir, blake3.Sum256(raw))
		v := fk.new()
		if err := r.openFile(raw, name, fk.kind, v); err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrFormat) {
				t.Fatalf("openFile error is neither corrupt nor format: %v", err)
			}
		}
		// A wrong name is always refused, before anything else is looked at.
		if err := r.openFile(raw, FileName(fk.dir, [32]byte{1}), fk.kind, fk.new()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("file accepted under a name that is not its hash: %v", err)
		}

		// Properly sealed arbitrary plaintext: the JSON layer must not panic,
		// and another kind's associated data must not open it.
		env := append([]byte(fileMagic+"\x01"), s.seal(nil, plain, []byte(fk.kind))...)
		name = FileName(fk.dir, blake3.Sum256(env))
		v = fk.new()
		err := r.openFile(env, name, fk.kind, v)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("sealed plaintext: %v", err)
		}
		if err == nil {
			if ixf, ok := v.(*IndexFile); ok {
				_ = ixf.PackInfos()
			}
		}
		other := fuzzFileKinds[(int(kind)+1)%len(fuzzFileKinds)]
		if err := r.openFile(env, name, other.kind, other.new()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a %s opened as a %s: %v", fk.kind, other.kind, err)
		}

		// The same plaintext as the sealed body of a compressed envelope
		// (version 2): the decompression layer gets arbitrary bytes, and
		// whatever it yields goes to the JSON layer.
		env2 := append([]byte(fileMagic+"\x02"), s.seal(nil, plain, []byte(fk.kind))...)
		if err := r.openFile(env2, FileName(fk.dir, blake3.Sum256(env2)), fk.kind, fk.new()); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("sealed compressed body: %v", err)
		}
		if c, ok := chunk.Compress(nil, plain, chunk.LevelFastest); ok {
			env2 = append([]byte(fileMagic+"\x02"), s.seal(nil, c, []byte(fk.kind))...)
			v2 := fk.new()
			err := r.openFile(env2, FileName(fk.dir, blake3.Sum256(env2)), fk.kind, v2)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("sealed compressed JSON: %v", err)
			}
			// Compressed or not, the same JSON decodes the same.
			if v1 := fk.new(); (err == nil) != (r.openFile(env, name, fk.kind, v1) == nil) {
				t.Fatalf("compressed and plain envelopes of the same JSON disagree: %v", err)
			}
		}
	})
}
