package repo

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"memento/walreplay"
)

// TEMPORARY test bridge (issue 13): the fixture helpers that lived in the
// verify tests, which moved to repo/verify (where their originals now are),
// copied back for the tests of other features that still use them in this
// package (pitr, restore, wal_health, check). The integrator unifies them.

// engramEpoch is where the test WALs' timestamps start.
const engramEpoch = int64(1_790_000_000_000_000_000)

// writeEngramSpace writes an Engram data dir holding one space: n WAL
// entries (stores and updates of n/2 ids, a delete every 11th) in segments
// of about segSize bytes, the three tiers, and checkpoint.json at cp.
func writeEngramSpace(t testing.TB, dataDir, space string, n int, segSize int64, cp uint64) {
	t.Helper()
	sd := filepath.Join(dataDir, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mem-%05d", i%(n/2+1))
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: engramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore}
		switch {
		case i%11 == 0 && i > 11:
			e.Type, e.Payload = walreplay.MemoryDelete, walreplay.AppendDelete(nil, fmt.Sprintf("mem-%05d", (i-5)%(n/2+1)))
		default:
			if i > n/2 {
				e.Type = walreplay.MemoryUpdate
			}
			emb := make([]float32, 16)
			for k := range emb {
				emb[k] = float32(i*k%97) / 97
			}
			e.Payload = walreplay.AppendRecord(nil, &walreplay.Record{ID: id, Confidence: float32(i%100) / 100, Embedding: emb,
				Content: strings.Repeat(fmt.Sprintf("memory %d ", i), 1+i%5)})
		}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sd, "hot", "stats.json"), []byte(`{"entries":`+fmt.Sprint(n)+`}`), 0o644)
	writeFile(t, filepath.Join(sd, "warm", "warm_tier.dat"), randomBytes(uint64(len(space)), 96<<10), 0o644)
	writeFile(t, filepath.Join(sd, "cold", "seg-000001.col"), randomBytes(7, 160<<10), 0o644)
	writeFile(t, filepath.Join(sd, "checkpoint.json"), fmt.Appendf(nil, `{"sequence":%d,"timestamp_ns":%d}`, cp, engramEpoch+int64(cp)*1000), 0o644)
	writeFile(t, filepath.Join(dataDir, "metadata.json"), []byte(`{"format":"engram-data-dir","version":1,"spaces":[{"id":"`+space+`"}]}`), 0o644)
}

// backupSpace backs up a space as the CLI does, recording its WAL range and
// state digest in the manifest.
func (tr *testRepo) backupSpace(t testing.TB, dataDir, space string) *Snapshot {
	t.Helper()
	rec := NewEngramRecorder(context.Background(), dataDir, space)
	defer rec.Close()
	opts := BackupOptions{Space: space, DataDir: dataDir}
	rec.Attach(&opts)
	sn, err := tr.Backup(context.Background(), opts)
	if err != nil {
		t.Fatalf("backup space %s: %v", space, err)
	}
	return sn
}

// spaceFixture is a repository with one Engram space snapshot and one
// snapshot of plain paths.
type spaceFixture struct {
	tr      *testRepo
	dataDir string
	space   *Snapshot
	paths   *Snapshot
}

func newSpaceFixture(t *testing.T, packSize int64) *spaceFixture {
	t.Helper()
	tr := newTestRepo(t, InitOptions{PackSize: packSize})
	dd := filepath.Join(t.TempDir(), "engram")
	writeEngramSpace(t, dd, "tenant_01", 600, 16<<10, 450)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "big"), randomBytes(3, 3<<20), 0o644)
	writeFile(t, filepath.Join(src, "dir", "small"), []byte("small file"), 0o600)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	if err := os.Symlink("big", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	return &spaceFixture{tr: tr, dataDir: dd, space: tr.backupSpace(t, dd, "tenant_01"), paths: tr.backup(t, BackupOptions{Paths: []string{src}})}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// repoFiles lists a repository's files of one kind ("" = all), relative.
func repoFiles(t testing.TB, dir, kind string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, kind), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
