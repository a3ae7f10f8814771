package fusefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"memento/repo"
	"memento/repo/backup/backuptest"
	"memento/repo/pitr"
	"memento/repo/repotest"
	"memento/walreplay"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRemoveStaleMountDirs: the views of a mount process that is gone are
// removed; those of a live process (and odd names) are kept.
func TestRemoveStaleMountDirs(t *testing.T) {
	parent := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{ // name -> kept
		strconv.Itoa(dead.Process.Pid) + "-123": false,
		strconv.Itoa(os.Getpid()) + "-456":      true,
		strconv.Itoa(os.Getppid()) + "-789":     true,
		"notapid-1":                             true,
	}
	for name := range dirs {
		if err := os.MkdirAll(filepath.Join(parent, name, "space-a-1", "spaces"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleMountDirs(parent, slog.New(slog.DiscardHandler))
	for name, kept := range dirs {
		_, err := os.Stat(filepath.Join(parent, name))
		if (err == nil) != kept {
			t.Errorf("%s: kept=%v, want %v", name, err == nil, kept)
		}
	}
}

// TestRecovererRecoversAndCleansUp: a Recoverer restores a space at an
// instant into its private directory below the cache dir, writes state.json
// there at once and memories.jsonl only when its LazyFile is written (with
// the restore's state digest), refuses an instant outside the ranges, and
// Cleanup removes everything it wrote.
func TestRecovererRecoversAndCleansUp(t *testing.T) {
	ctx := context.Background()
	tr := repotest.New(t, repo.InitOptions{})
	const space = "s1"
	dd := t.TempDir()
	sd := filepath.Join(dd, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: 4 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	const n, epoch = 60, int64(1_800_000_000_000_000_000)
	for i := 1; i <= n; i++ {
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: epoch + int64(i)*1000, Type: walreplay.EpisodeStore,
			Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: fmt.Sprintf("mem-%03d", i%17), Embedding: []float32{float32(i), 1},
				Content: fmt.Sprintf("memory %d", i)})}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{
		filepath.Join(sd, "checkpoint.json"):   `{"sequence":0,"timestamp_ns":0}`,
		filepath.Join(sd, "hot", "stats.json"): `{}`,
		filepath.Join(dd, "metadata.json"):     `{"format":"engram-data-dir","version":1,"spaces":[{"id":"` + space + `"}]}`,
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	backuptest.Space(t, tr.Repository, dd, space)

	cache := t.TempDir()
	var printed []string
	m, err := NewRecoverer(tr.Repository, RecovererOptions{CacheDir: cache, Logger: quietLog(),
		Printf: func(format string, args ...any) { printed = append(printed, fmt.Sprintf(format, args...)) }})
	if err != nil {
		t.Fatal(err)
	}
	at := epoch + 40*1000 + 500 // between entries 40 and 41
	pit, err := m.Recover(ctx, space, 0, at)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pit.Dir, filepath.Join(cache, MountPITRDirName)+"/") {
		t.Fatalf("view at %s, not below the cache dir's %s", pit.Dir, MountPITRDirName)
	}
	b, err := os.ReadFile(filepath.Join(pit.Dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st PITState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Space != space || st.Seq != 40 || st.AtNS != at || st.StateDigest == "" || len(printed) != 1 {
		t.Fatalf("state.json %+v (printed %q), want space %s at seq 40 with a digest", st, printed, space)
	}
	if _, err := os.Stat(filepath.Join(pit.Dir, "spaces", space, "wal")); err != nil {
		t.Fatalf("the restored space: %v", err)
	}
	mem := filepath.Join(pit.Dir, MemoriesFile)
	if _, err := os.Stat(mem); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("memories.jsonl before its first use: %v", err)
	}
	if len(pit.Lazy) != 1 || pit.Lazy[0].Name != MemoriesFile {
		t.Fatalf("lazy files %+v, want %s", pit.Lazy, MemoriesFile)
	}
	if err := pit.Lazy[0].Write(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(mem); err != nil || len(b) == 0 {
		t.Fatalf("memories.jsonl: %d bytes, %v", len(b), err)
	}
	if _, err := m.Recover(ctx, space, 0, epoch-1); !errors.Is(err, pitr.ErrUnrecoverable) {
		t.Fatalf("recover before the first entry: %v, want ErrUnrecoverable", err)
	}
	m.Cleanup()
	if left, _ := filepath.Glob(filepath.Join(cache, MountPITRDirName, "*")); len(left) != 0 {
		t.Fatalf("left after Cleanup: %v", left)
	}
	if _, err := m.Recover(ctx, space, 0, at); err == nil {
		t.Fatal("recover after Cleanup succeeded")
	}
}
