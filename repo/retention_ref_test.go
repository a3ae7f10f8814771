package repo

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"memento/chunk"
)

// retainBackend is a Backend with a retention (RetentionExtender) that
// retains nothing already written and records every pack extended.
type retainBackend struct {
	Backend
	mu       sync.Mutex
	extended []string
}

func (b *retainBackend) RetentionPeriod() time.Duration { return 24 * time.Hour }
func (b *retainBackend) PackMargin() time.Duration      { return 0 }
func (b *retainBackend) RetainedUntil(context.Context, string) (time.Time, error) {
	return time.Time{}, nil
}
func (b *retainBackend) ExtendRetention(_ context.Context, name string, _ time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extended = append(b.extended, name)
	return nil
}

// TestExtendRetentionKeepsGroupPack: a member and its group in two packs
// (what prune's repack writes: it adds blobs one by one, so the packer
// may close a pack between a group and its members, and repacks two packs
// at once) — extending the retention of the chunks a snapshot or a WAL
// record uses extends the group's pack too. Before, only the member's
// pack was extended: the group's expired first and the backup host's
// credentials could delete it while a retained snapshot needed it (the
// same held for a delta's base, format 4).
func TestExtendRetentionKeepsGroupPack(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	files, plain := smallFiles(3)
	key := tr.ChunkKey("")
	gid := key.Sum(plain)
	stored, compressed := chunk.Compress(nil, plain, chunk.LevelFastest)
	if !compressed {
		t.Fatal("group did not compress")
	}
	write := func(add func(p *Packer)) [32]byte {
		p := tr.NewPacker(ctx, "")
		add(p)
		packs, _, err := p.Flush()
		if err != nil || len(packs) != 1 {
			t.Fatalf("flush: %d packs, %v", len(packs), err)
		}
		if err := tr.SaveIndex(ctx, packs); err != nil {
			t.Fatal(err)
		}
		return packs[0].ID
	}
	groupPack := write(func(p *Packer) {
		if err := p.Add(DataBlob, gid, FlagCompressed, len(plain), stored); err != nil {
			t.Fatal(err)
		}
	})
	var ids []chunk.ID
	off := 0
	memberPack := write(func(p *Packer) {
		for _, f := range files {
			id := key.Sum(f)
			ids = append(ids, id)
			frame := chunk.AppendMember(nil, chunk.Member{Group: gid, Offset: uint32(off), Length: uint32(len(f))})
			if err := p.Add(DataBlob, id, FlagMember, len(f), frame); err != nil {
				t.Fatal(err)
			}
			off += len(f)
		}
	})
	be := &retainBackend{Backend: tr.be}
	r, err := Open(ctx, be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadBlob(ctx, "", DataBlob, ids[1]); err != nil || string(got) != string(files[1]) {
		t.Fatalf("member read: %v", err)
	}
	if _, err := r.ExtendChunkRetention(ctx, "", ids); err != nil {
		t.Fatal(err)
	}
	slices.Sort(be.extended)
	want := []string{PackName(groupPack), PackName(memberPack)}
	slices.Sort(want)
	if !slices.Equal(be.extended, want) {
		t.Fatalf("extended %q, want the member's pack and its group's %q", be.extended, want)
	}
}
