package maintenance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore/restoretest"
	"memento/repo/walarchive"
	"memento/walreplay"
)

// forgetAll forgets snapshots even when they are the last of their group.
func forgetAll(t testing.TB, r *repo.Repository, sns ...*repo.Snapshot) {
	t.Helper()
	var ids []string
	for _, sn := range sns {
		ids = append(ids, sn.ID.String())
	}
	if _, err := Forget(context.Background(), r, ForgetOptions{IDs: ids, AllowEmpty: true}); err != nil {
		t.Fatalf("forget: %v", err)
	}
}

// prunableRepo makes a repository where prune has real work: a pack to
// repack (a snapshot's file kept, its neighbour forgotten) and a pack to
// delete (a forgotten snapshot's own file). It returns the snapshot kept
// and the digest of what it backed up.
func prunableRepo(t *testing.T) (*repotest.Repo, *repo.Snapshot, map[string]repotest.Entry) {
	t.Helper()
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "keep"), repotest.RandomBytes(11, 600<<10), 0o644)
	repotest.WriteFile(t, filepath.Join(src, "gone"), repotest.RandomBytes(12, 600<<10), 0o644)
	old := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	solo := filepath.Join(t.TempDir(), "solo")
	repotest.WriteFile(t, filepath.Join(solo, "only"), repotest.RandomBytes(13, 400<<10), 0o644)
	soloSn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{solo}})
	if err := os.Remove(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}
	repotest.WriteFile(t, filepath.Join(src, "new"), repotest.RandomBytes(14, 300<<10), 0o644)
	cur := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	forgetAll(t, tr.Repository, old, soloSn)
	return tr, cur, repotest.DigestTree(t, src)
}

// walWriter appends WAL entries to a space of a data dir, as Engram does.
type walWriter struct {
	w   *walreplay.Writer
	seq uint64
	ts  int64
}

func newWALWriter(t *testing.T, dataDir, space string) *walWriter {
	t.Helper()
	w, err := walreplay.OpenWriter(filepath.Join(dataDir, "spaces", space, "wal"), walreplay.WriterOptions{MaxSegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	repotest.WriteFile(t, filepath.Join(dataDir, "metadata.json"), []byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"`+space+`"}]}`), 0o644)
	return &walWriter{w: w, ts: repotest.EngramEpoch}
}

// write appends entries of about n bytes in all and syncs them.
func (ww *walWriter) write(n int) error {
	for written := 0; written < n; {
		ww.seq++
		ww.ts += 1000
		rec := walreplay.Record{ID: fmt.Sprintf("mem-%d", ww.seq%97), Confidence: 0.5, Content: fmt.Sprintf("%x", repotest.RandomBytes(ww.seq, 1000)), Embedding: make([]float32, 16)}
		e := &walreplay.Entry{Seq: ww.seq, TimestampNS: ww.ts, Type: walreplay.EpisodeStore, Payload: walreplay.AppendRecord(nil, &rec)}
		if err := ww.w.Append(e); err != nil {
			return err
		}
		written += int(e.Size())
	}
	return ww.w.Sync()
}

// checkArchive asserts that every archived record of the space reads back
// byte for byte as the data dir's segment.
func checkArchive(t *testing.T, r *repo.Repository, dataDir, space string) int {
	t.Helper()
	arch, err := walarchive.LoadWALArchive(context.Background(), r, space)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range arch.Segments() {
		seg, err := os.ReadFile(filepath.Join(dataDir, "spaces", space, "wal", rec.Name))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for _, c := range rec.Chunks {
			b, err := r.ReadBlob(context.Background(), space, repo.DataBlob, c.ID)
			if err != nil {
				t.Fatalf("segment %s chunk %s: %v", rec.Name, c.ID.Short(), err)
			}
			got = append(got, b...)
		}
		if int64(len(seg)) < rec.Size || !bytes.Equal(got, seg[:rec.Size]) {
			t.Fatalf("segment %s: the archive's %d bytes differ from the data dir's", rec.Name, rec.Size)
		}
		n++
	}
	return n
}

// TestPruneWhileArchiving runs a prune with real work (a pack to delete, a
// pack to repack) while another handle of the repository (its own cache,
// its own session lock, as the agent's) keeps archiving a space's WAL and
// backing up: phase 1 is held open (BetweenPhases) until that writer has
// completed archiveRuns more archive runs; Pause then stops it for phase 2
// only. Afterwards nothing is lost: check reads every pack without an
// error, the snapshot kept and every backup the writer made restore byte
// for byte, and every archived WAL record reads back as the data dir's
// segment.
func TestPruneWhileArchiving(t *testing.T) {
	const archiveRuns, postRuns = 5, 3
	tr, cur, want := prunableRepo(t)
	dataDir, space := t.TempDir(), "live"
	ww := newWALWriter(t, dataDir, space)

	other := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "writer"), Backend: tr.Backend}
	w := other.Reopen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	session, err := w.Lock(ctx, false, "agent")
	if err != nil {
		t.Fatal(err)
	}
	defer session.Unlock()
	ar := walarchive.NewWALArchiver(w, nil)
	defer ar.Close()

	// The writer: append WAL, archive it, and every third run back up a
	// new file, until stopped. writing is held across each round, so that
	// Pause stops it between rounds.
	var writing sync.Mutex
	var runs atomic.Int64
	ran := make(chan struct{}, 1)
	type backedUp struct {
		sn  *repo.Snapshot
		dir string
	}
	var backups []backedUp
	errc := make(chan error, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				errc <- nil
				return
			default:
			}
			writing.Lock()
			err := func() error {
				if err := ww.write(24 << 10); err != nil {
					return err
				}
				if _, err := ar.ArchiveSpace(session.Context(), dataDir, space); err != nil {
					return err
				}
				if i%3 == 2 {
					dir := filepath.Join(dataDir, fmt.Sprintf("files%d", i))
					if err := os.MkdirAll(dir, 0o755); err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, "f"), repotest.RandomBytes(uint64(100+i), 96<<10), 0o644); err != nil {
						return err
					}
					sn, err := backup.Backup(session.Context(), w, backup.BackupOptions{Paths: []string{dir}})
					if err != nil {
						return err
					}
					backups = append(backups, backedUp{sn, dir})
				}
				return nil
			}()
			writing.Unlock()
			if err != nil {
				errc <- err
				return
			}
			runs.Add(1)
			select {
			case ran <- struct{}{}:
			default:
			}
		}
	}()

	var during int64
	paused := 0
	res, err := Prune(context.Background(), tr.Repository, PruneOptions{
		MaxUnused: DefaultMaxUnused,
		BetweenPhases: func(ctx context.Context) error {
			// Phase 1 is done but its lock held: wait for archiveRuns more
			// runs of the writer.
			from := runs.Load()
			for runs.Load() < from+archiveRuns {
				select {
				case <-ran:
				case <-done:
					return <-errc
				}
			}
			during = runs.Load() - from
			return nil
		},
		Pause: func(ctx context.Context) ([]*repo.Lock, func(), error) {
			writing.Lock()
			paused++
			return []*repo.Lock{session}, func() {
				// The writer's handle has its own cache: it learns what
				// the prune deleted as any handle does (Sync: index files
				// gone); the agent's prune runs on its own handle.
				if err := w.Sync(ctx); err != nil {
					t.Errorf("sync: %v", err)
				}
				ar.Reload()
				writing.Unlock()
			}, nil
		},
	})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	// A few more rounds after the prune: the writer goes on from what the
	// prune left (its archiver reloaded).
	for target := runs.Load() + postRuns; runs.Load() < target; {
		select {
		case <-ran:
		case <-done:
			t.Fatalf("writer: %v", <-errc)
		}
	}
	close(stop)
	<-done
	if err := <-errc; err != nil {
		t.Fatalf("writer: %v", err)
	}

	t.Logf("phase 2: %+v", *res.Exclusive)
	if during < archiveRuns || paused != 1 {
		t.Fatalf("%d archive runs during phase 1, paused %d times", during, paused)
	}
	ex := res.Exclusive
	if ex == nil || ex.NewWALFiles < archiveRuns || ex.NewIndexFiles < archiveRuns || ex.NewSnapshots < 1 {
		t.Fatalf("phase 2 caught up with %+v; want at least %d WAL and index files and a snapshot", ex, archiveRuns)
	}
	if res.PacksDeleted < 1 || res.PacksRepacked < 1 || res.BytesFreed <= 0 {
		t.Fatalf("prune did no real work: %+v", res)
	}
	// The writer saved more after the prune: this handle's cache learns
	// of it as any handle does.
	if err := tr.Repository.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, tr.Repository, true)
	repotest.CompareTrees(t, want, repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, cur), "src")))
	if len(backups) < 2 {
		t.Fatalf("the writer made %d backups", len(backups))
	}
	for _, b := range backups {
		repotest.CompareTrees(t, repotest.DigestTree(t, b.dir), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, b.sn), filepath.Base(b.dir))))
	}
	if n := checkArchive(t, tr.Repository, dataDir, space); n == 0 {
		t.Fatal("nothing archived")
	}
	// A fresh host (empty cache) sees the same.
	fresh := &repotest.Repo{Dir: tr.Dir, Cache: filepath.Join(t.TempDir(), "fresh"), Backend: tr.Backend}
	fresh.Repository = fresh.Reopen(t)
	mustCheck(t, fresh.Repository, true)
	checkArchive(t, fresh.Repository, dataDir, space)
}

// TestPruneKeepsWhatPhase1Referenced saves, between phase 1's mark and
// phase 2, a manifest and WAL archive records that reference blobs held
// only by packs phase 1 planned to delete (a backup of a forgotten file's
// bytes, the first archive run of a space whose only snapshot was
// forgotten: both deduplicate against those packs). Phase 2 keeps those
// packs: the new snapshot restores byte for byte, the archived WAL reads
// back as the data dir's, and check reads everything without an error.
func TestPruneKeepsWhatPhase1Referenced(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	ctx := context.Background()
	gone := repotest.RandomBytes(21, 700<<10)
	src := filepath.Join(t.TempDir(), "src")
	repotest.WriteFile(t, filepath.Join(src, "gone"), gone, 0o644)
	old := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	keep := filepath.Join(t.TempDir(), "keep")
	repotest.WriteFile(t, filepath.Join(keep, "k"), repotest.RandomBytes(22, 300<<10), 0o644)
	kept := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{keep}})
	dataDir, space := t.TempDir(), "s2"
	repotest.WriteEngramSpace(t, dataDir, space, 3000, 64<<10, 2000)
	spaceSn := backuptest.Space(t, tr.Repository, dataDir, space)
	forgetAll(t, tr.Repository, old, spaceSn)

	dry := prune(t, tr.Repository, PruneOptions{DryRun: true, MaxUnused: DefaultMaxUnused})
	if dry.PacksDeleted < 2 {
		t.Fatalf("dry run: %+v; want the forgotten snapshots' packs deleted", dry)
	}

	again := filepath.Join(t.TempDir(), "again")
	repotest.WriteFile(t, filepath.Join(again, "same"), gone, 0o644)
	var sn *repo.Snapshot
	var archived *walarchive.WALArchiveResult
	res, err := Prune(ctx, tr.Repository, PruneOptions{
		MaxUnused: DefaultMaxUnused,
		BetweenPhases: func(ctx context.Context) error {
			var err error
			if sn, err = backup.Backup(ctx, tr.Repository, backup.BackupOptions{Paths: []string{again}}); err != nil {
				return err
			}
			ar := walarchive.NewWALArchiver(tr.Repository, nil)
			defer ar.Close()
			archived, err = ar.ArchiveSpace(ctx, dataDir, space)
			return err
		},
	})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if sn.Summary.NewBytes != 0 || archived.StoredBytes > 64<<10 {
		t.Fatalf("the backup stored %d new bytes and the archive run %d: they did not deduplicate against the packs planned to go",
			sn.Summary.NewBytes, archived.StoredBytes)
	}
	ex := res.Exclusive
	if ex == nil || ex.NewSnapshots != 1 || ex.NewWALFiles < 1 || ex.PacksKeptBack < 2 || res.PacksDeleted != dry.PacksDeleted-ex.PacksKeptBack {
		t.Fatalf("phase 2 %+v, prune %+v, dry run deleted %d packs", ex, res, dry.PacksDeleted)
	}
	mustCheck(t, tr.Repository, true)
	repotest.CompareTrees(t, repotest.DigestTree(t, again), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, sn), "again")))
	repotest.CompareTrees(t, repotest.DigestTree(t, keep), repotest.DigestTree(t, filepath.Join(restoretest.Restore(t, tr.Repository, kept), "keep")))
	if n := checkArchive(t, tr.Repository, dataDir, space); n == 0 {
		t.Fatal("nothing archived")
	}
	// The next prune, with nothing new, deletes nothing the new snapshot or
	// the archive uses either.
	prune(t, tr.Repository, PruneOptions{MaxUnused: DefaultMaxUnused})
	mustCheck(t, tr.Repository, true)
	checkArchive(t, tr.Repository, dataDir, space)
}
