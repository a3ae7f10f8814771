package local

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// backend is repo.Backend, copied here to prove the method set matches it
// without importing repo.
type backend interface {
	List(ctx context.Context, dir string, fn func(name string, size int64) error) error
	Open(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	Write(ctx context.Context, name string, r io.Reader, size int64) error
	Stat(ctx context.Context, name string) (int64, error)
	Delete(ctx context.Context, name string) error
	Location() string
}

var _ backend = (*Backend)(nil)

// stallingReader yields one chunk, signals, then blocks forever: the writer
// is mid-copy when it is killed.
type stallingReader struct {
	sent   bool
	signal func()
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return len(p), nil
	}
	r.signal()
	time.Sleep(time.Hour)
	return 0, io.EOF
}

const crashEnv = "MEMENTO_LOCAL_CRASH_HELPER"

// TestCrashHelper is the child process of TestKillDuringWrite.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := &stallingReader{signal: func() { _ = os.WriteFile(filepath.Join(dir, "..", "ready"), nil, 0o600) }}
	_ = b.Write(context.Background(), "data/ab/killed", r, 64<<20)
	t.Fatal("Write returned from a stalled source")
}

// TestKillDuringWrite kills -9 a process in the middle of Write: the name
// must not exist afterwards, and the leftover temp file must be invisible to
// List and harmless to the next Write of the same name.
func TestKillDuringWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	b, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(base, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("helper never started writing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	ctx := context.Background()
	if _, err := b.Stat(ctx, "data/ab/killed"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after kill: %v", err)
	}
	onDisk := allFiles(t, dir)
	if len(onDisk) != 1 || !strings.HasPrefix(onDisk[0], "data/ab/"+tmpPrefix) {
		t.Fatalf("on disk after kill: %v (want one temp file)", onDisk)
	}
	if got := listMap(t, b, ""); len(got) != 0 {
		t.Fatalf("List shows %v after kill", got)
	}
	if err := b.Write(ctx, "data/ab/killed", strings.NewReader("fine"), 4); err != nil {
		t.Fatal(err)
	}
	if got := listMap(t, b, ""); len(got) != 1 || got["data/ab/killed"] != 4 {
		t.Fatalf("List after rewrite: %v", got)
	}
}
