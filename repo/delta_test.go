package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"memento/chunk"
	"memento/index"
	"memento/repo/slabmem"
)

// deltaPages is a 32 KiB chunk of a warm page file and the same chunk with
// its second 4 KiB page rewritten: a base and its delta's plaintext.
func deltaPages() (base, v1 []byte) {
	base = bytes.Repeat([]byte("warm page "), 3277)[:32<<10]
	v1 = bytes.Clone(base)
	copy(v1[4096:], "rewritten page one")
	return base, v1
}

// TestDeltaReadPathRefuses: the read path rebuilds a delta from its base
// (ReadBlob and StreamBlobs, fresh and pooled), and refuses, with a
// CorruptError naming the chunk, a delta whose base is itself a delta
// (depth 2), whose base no pack holds, whose length is not the index's,
// and whose result is not its ID.
func TestDeltaReadPathRefuses(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	key := tr.ChunkKey("")
	base, v1 := deltaPages()
	v2 := bytes.Clone(v1)
	copy(v2[8192:], "rewritten page two")
	baseID, id1, id2 := key.Sum(base), key.Sum(v1), key.Sum(v2)
	frame := func(b chunk.ID, raw []byte, against []byte) []byte {
		return chunk.AppendDelta(nil, b, raw, chunk.DiffPages(against, raw), func(p []byte) ([]byte, bool) { return p, false })
	}
	missing := chunk.ID{7}
	wrongID := key.Sum([]byte("not the plaintext"))
	short := key.Sum(v1[:16<<10])
	packDataBlobs(t, tr, []dataBlob{
		{baseID, 0, len(base), base},
		{id1, FlagDelta, len(v1), frame(baseID, v1, base)},
		{id2, FlagDelta, len(v2), frame(id1, v2, v1)},               // depth 2
		{missing, FlagDelta, len(v1), frame(chunk.ID{8}, v1, base)}, // no base
		{wrongID, FlagDelta, len(v1), frame(baseID, v1, base)},      // not its ID
		{short, FlagDelta, 16 << 10, frame(baseID, v1, base)},       // 32 KiB frame, index says 16
	})
	got, err := tr.ReadBlob(ctx, "", DataBlob, id1)
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("ReadBlob of a delta: %v", err)
	}
	for _, buf := range []BufferPolicy{BufferFresh, BufferPooled, BufferBorrowed} {
		for _, m := range []*slabmem.Mem{nil, slabmem.New()} { // the heap's buffers, a Mem's
			n := 0
			// wrongID fails after the delta is applied, short before:
			// their buffers go back to the Mem too.
			err := tr.StreamBlobs(ctx, "", DataBlob, []chunk.ID{id1, baseID, id1, wrongID, short}, StreamOptions{Buffer: buf, Ahead: 1 << 20, Workers: 2, Mem: m}, func(b StreamBlob) error {
				want := v1
				if b.ID == baseID {
					want = base
				}
				if b.ID == wrongID || b.ID == short {
					if b.Err == nil {
						t.Errorf("buffer %d: blob %s opened", buf, b.ID.Short())
					}
				} else if b.Err != nil || !bytes.Equal(b.Data, want) {
					t.Errorf("buffer %d: blob %s: %v", buf, b.ID.Short(), b.Err)
				}
				if buf == BufferPooled { // BufferBorrowed: StreamBlobs takes it back
					PutPooled(m, b.Pooled)
				} else if buf == BufferFresh {
					m.Put(b.Data)
				}
				n++
				return nil
			})
			if err != nil || n != 5 {
				t.Fatalf("buffer %d: %v, %d blobs", buf, err, n)
			}
			if k := m.Out(); k != 0 {
				t.Fatalf("buffer %d: %d buffers of the Mem not given back", buf, k)
			}
			m.Release()
		}
	}
	for _, c := range []struct {
		id   chunk.ID
		want string
	}{
		{id2, "data blob " + id2.Short() + ": delta base " + id1.Short() + " is itself a delta"},
		{missing, "data blob " + missing.Short() + ": delta base " + chunk.ID{8}.Short() + " is in no pack the index knows"},
		{wrongID, "blob " + wrongID.Short() + ": content does not match its ID"},
		{short, "data blob " + short.Short() + ": delta of 32768 bytes, index says 16384"},
	} {
		_, err := tr.ReadBlob(ctx, "", DataBlob, c.id)
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("blob %s: %v, want a CorruptError with %q", c.id.Short(), err, c.want)
		}
	}
	// The frames name their bases without the bases being read.
	locs, err := tr.Locate("", []chunk.ID{id1, id2})
	if err != nil {
		t.Fatal(err)
	}
	ids := []chunk.ID{id1, id2}
	bases, errs := tr.RefTargets(ctx, "", ids, []index.Location{locs[id1], locs[id2]})
	if errs[0] != nil || errs[1] != nil || bases[0] != baseID || bases[1] != id1 {
		t.Fatalf("RefTargets: %v %v", bases, errs)
	}
}

// TestDeltaBaseFallsBackToAnotherCopy: a delta whose base has two whole
// copies opens when the copy the location cache holds is damaged: the
// read path tries every copy the index knows, as StreamBlobs' fallback
// does for any blob.
func TestDeltaBaseFallsBackToAnotherCopy(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	key := tr.ChunkKey("")
	base, v1 := deltaPages()
	baseID, id1 := key.Sum(base), key.Sum(v1)
	delta := chunk.AppendDelta(nil, baseID, v1, chunk.DiffPages(base, v1), func(p []byte) ([]byte, bool) { return p, false })
	packDataBlobs(t, tr, []dataBlob{{baseID, 0, len(base), base}}) // two packs holding the base whole
	packDataBlobs(t, tr, []dataBlob{{baseID, 0, len(base), base}})
	packDataBlobs(t, tr, []dataBlob{{id1, FlagDelta, len(v1), delta}})
	if got, err := tr.ReadBlob(ctx, "", DataBlob, id1); err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("delta before the damage: %v", err)
	}
	tr.mu.Lock()
	l, ok := tr.locs[StorageSpace("")][baseID]
	tr.mu.Unlock()
	if !ok {
		t.Fatal("the base's location is not cached after a read of its delta")
	}
	name := filepath.Join(tr.dir, filepath.FromSlash(PackName(l.Pack)))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	b[l.Offset+l.Length/2] ^= 0x40
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := tr.ReadBlob(ctx, "", DataBlob, id1)
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("delta with its cached base copy damaged: %v (want the other copy used)", err)
	}
}

// dataBlob is a data blob for packDataBlobs: its ID, flags, plaintext
// length and stored form.
type dataBlob struct {
	id     chunk.ID
	flags  uint8
	raw    int
	stored []byte
}

// packDataBlobs writes blobs into one pack of the default space and saves
// its index file.
func packDataBlobs(t *testing.T, tr *testRepo, blobs []dataBlob) {
	t.Helper()
	ctx := context.Background()
	p := tr.NewPacker(ctx, "")
	for _, b := range blobs {
		if err := p.Add(DataBlob, b.id, b.flags, b.raw, b.stored); err != nil {
			t.Fatal(err)
		}
	}
	packs, _, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
}
