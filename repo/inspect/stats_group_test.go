package inspect_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/inspect"
	"memento/repo/repotest"
)

// TestStatsGroupedFiles: the stored size of a format-6 snapshot whose
// small files are members of groups counts their groups (once each), not
// only the members' frames: files that do not compress take about their
// own size stored, as in a format-5 repository. Before, stats reported the
// frames only (about 80 bytes a file) and a compression ratio of 50.
func TestStatsGroupedFiles(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var size uint64
	for i := range 40 {
		n := 2000 + 100*i
		repotest.WriteFile(t, filepath.Join(data, fmt.Sprintf("f%02d.bin", i)), repotest.RandomBytes(uint64(i+1), n), 0o644)
		size += uint64(n)
	}
	stored := map[int]uint64{}
	for _, format := range []int{5, 6} {
		tr := repotest.New(t, repo.InitOptions{})
		r := tr.Repository
		if format == 5 {
			tr.SetFormat(t, 5)
			r = tr.Reopen(t)
		}
		sn := backuptest.Backup(t, r, backup.BackupOptions{Paths: []string{data}, Host: "h"})
		st, err := inspect.ComputeStats(ctx, r, []*repo.Snapshot{sn}, inspect.StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.DataRawBytes != size || st.DataStoredBytes < size || st.CompressionRatio > 1 {
			t.Fatalf("format %d: %d raw bytes, %d stored, compression %.2f: want %d raw, at least as many stored", format, st.DataRawBytes, st.DataStoredBytes, st.CompressionRatio, size)
		}
		stored[format] = st.DataStoredBytes
	}
	if stored[6] > stored[5]+stored[5]/10 {
		t.Fatalf("stored: format 6 %d bytes, format 5 %d", stored[6], stored[5])
	}
}
