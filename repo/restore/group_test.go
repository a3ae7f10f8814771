package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
	"memento/repo/restore"
)

// TestRestoreCorruptGroup: the pack bytes of one group (format 6) are
// damaged. A restore fails with an error naming a file of that group and
// the group, and leaves none of its files written; with SkipDamaged every
// other file (another group's, a file stored whole) is restored byte for
// byte and each file of the damaged group is reported, none written.
func TestRestoreCorruptGroup(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	c := repotest.NewCrafter(t, tr.Repository, "")
	var badNames, goodNames []string
	var badData, goodData [][]byte
	for i := range 5 {
		badNames = append(badNames, "bad"+strconv.Itoa(i))
		badData = append(badData, repotest.RandomBytes(uint64(100+i), 500+i*300))
		goodNames = append(goodNames, "good"+strconv.Itoa(i))
		goodData = append(goodData, repotest.RandomBytes(uint64(200+i), 700+i*200))
	}
	bad, badID := c.Group(badNames, badData)
	good, _ := c.Group(goodNames, goodData)
	whole := c.File("whole", repotest.RandomBytes(9, 3000))
	nodes := append(append([]*repo.Node{}, good...), c.Dir("sub", bad...), whole) // sorted by name
	sn := c.Snapshot(c.Tree(nodes...))
	locs, err := tr.Locate("", []chunk.ID{badID})
	if err != nil || locs[badID].Pack == (chunk.ID{}) {
		t.Fatalf("group %s not indexed: %v", badID.Short(), err)
	}
	l := locs[badID]
	repotest.FlipByte(t, filepath.Join(tr.Dir, repo.PackName(l.Pack)), int64(l.Offset)+int64(l.Length)/2)

	dst := filepath.Join(t.TempDir(), "dst")
	_, err = restore.Restore(context.Background(), tr.Repository, sn, dst, restore.RestoreOptions{Workers: 2})
	if err == nil {
		t.Fatal("restore of a tree whose group is damaged succeeded")
	}
	msg := err.Error()
	t.Logf("restore: %s", msg)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "sub/bad") || !strings.Contains(msg, badID.Short()) {
		t.Fatalf("error %q: want one line naming a file of the group (sub/bad*) and the group %s", msg, badID.Short())
	}
	for _, n := range badNames {
		if _, err := os.Lstat(filepath.Join(dst, "sub", n)); err == nil {
			t.Errorf("%s written although its group is damaged", n)
		}
	}

	dst2 := filepath.Join(t.TempDir(), "dst2")
	_, err = restore.Restore(context.Background(), tr.Repository, sn, dst2, restore.RestoreOptions{Workers: 2, SkipDamaged: true})
	var pe *restore.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("SkipDamaged restore: %v, want a PartialError", err)
	}
	var skipped []string
	for _, d := range pe.Damaged {
		skipped = append(skipped, d.Path)
	}
	sort.Strings(skipped)
	var want []string
	for _, n := range badNames {
		want = append(want, "sub/"+n)
	}
	if fmt.Sprint(skipped) != fmt.Sprint(want) {
		t.Fatalf("damaged %v, want %v", skipped, want)
	}
	for i, n := range goodNames {
		got, err := os.ReadFile(filepath.Join(dst2, n))
		if err != nil || !bytes.Equal(got, goodData[i]) {
			t.Fatalf("%s: %v (%d bytes, want %d)", n, err, len(got), len(goodData[i]))
		}
	}
	for _, n := range badNames {
		if _, err := os.Lstat(filepath.Join(dst2, "sub", n)); err == nil {
			t.Errorf("%s written although its group is damaged", n)
		}
	}
}

// cancelOnGroup is a Repository that cancels the restore once a group has
// been read: the cancellation lands while a worker writes a group's files.
type cancelOnGroup struct {
	*repo.Repository
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOnGroup) StreamBlobs(ctx context.Context, space string, t repo.BlobType, ids []chunk.ID, opts repo.StreamOptions, fn func(repo.StreamBlob) error) error {
	return c.Repository.StreamBlobs(ctx, space, t, ids, opts, func(b repo.StreamBlob) error {
		err := fn(b)
		if b.Err == nil && b.Loc.Flags&repo.FlagMember == 0 && len(ids) == 1 {
			c.once.Do(c.cancel)
		}
		return err
	})
}

// TestRestoreGroupCancelled: a restore of grouped files cancelled while a
// group is being written returns context.Canceled and leaves no goroutine
// behind.
func TestRestoreGroupCancelled(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	src := filepath.Join(t.TempDir(), "src")
	for i := range 300 {
		repotest.WriteFile(t, filepath.Join(src, "f"+strconv.Itoa(i)), repotest.RandomBytes(uint64(i+1), 200+(i*977)%(8<<10)), 0o644)
	}
	sn := backuptest.Backup(t, tr.Repository, backup.BackupOptions{Paths: []string{src}})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cr := &cancelOnGroup{Repository: tr.Repository, cancel: cancel}
	_, err := restore.Restore(ctx, cr, sn, filepath.Join(t.TempDir(), "dst"), restore.RestoreOptions{Workers: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("restore cancelled mid-group: %v, want context.Canceled", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines 10 s after the cancelled restore, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
