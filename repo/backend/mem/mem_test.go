package mem_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/backend/backendtest"
	"memento/repo/backend/mem"
)

// The in-memory backend is a repo.Backend and knows modification times.
var (
	_ repo.Backend       = (*mem.Backend)(nil)
	_ repo.ModTimeLister = (*mem.Backend)(nil)
)

// TestContract runs the contract every backend passes.
func TestContract(t *testing.T) {
	backendtest.Run(t, backendtest.Config{
		Name:           "mem backend",
		NotExist:       "file does not exist",
		ErrInvalidName: mem.ErrInvalidName,
	}, func(t *testing.T) repo.Backend { return mem.New("t") })
}

func TestLocation(t *testing.T) {
	if got := mem.New("t").Location(); got != "mem:t" {
		t.Fatalf("Location = %q", got)
	}
}

// ListModTimes reports the times of the backend's clock (SetClock).
func TestListModTimesClock(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b.SetClock(func() time.Time { return t1 })
	if err := b.Write(ctx, "locks/a", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	b.SetClock(func() time.Time { return t1.Add(time.Minute) })
	if err := b.Write(ctx, "locks/b", strings.NewReader("yy"), 2); err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	err := b.ListModTimes(ctx, "locks", func(name string, size int64, mtime time.Time) error {
		got[name] = mtime
		return nil
	})
	if err != nil || len(got) != 2 || !got["locks/a"].Equal(t1) || !got["locks/b"].Equal(t1.Add(time.Minute)) {
		t.Fatalf("ListModTimes = %v, %v", got, err)
	}
}

// TestFaults: the hook fails an operation, cuts a read short or corrupts
// its bytes in flight; Damage changes the stored file itself.
func TestFaults(t *testing.T) {
	b := mem.New("t")
	ctx := context.Background()
	data := backendtest.RandBytes(5, 1000)
	if err := b.Write(ctx, "data/p", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")

	b.FailOn(mem.OpStat, func(n string) bool { return n == "data/p" }, boom)
	if _, err := b.Stat(ctx, "data/p"); !errors.Is(err, boom) || err.Error() != "mem backend: stat data/p: boom" {
		t.Fatalf("Stat with a fault: %v", err)
	}
	if got := backendtest.ReadAll(t, b, "data/p", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("a fault on stat changed open")
	}

	b.FailOn(mem.OpWrite, func(string) bool { return true }, boom)
	if err := b.Write(ctx, "data/q", strings.NewReader("x"), 1); !errors.Is(err, boom) {
		t.Fatalf("Write with a fault: %v", err)
	}
	if _, err := b.Stat(ctx, "data/q"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed write stored the file: %v", err)
	}

	b.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
		if op == mem.OpOpen {
			return mem.Fault{Short: true, ShortAfter: 10}
		}
		return mem.Fault{}
	})
	rc, err := b.Open(ctx, "data/p", 100, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data[100:110]) {
		t.Fatalf("short read: %d bytes, %v", len(got), err)
	}

	b.SetHook(func(op mem.Op, name string, off, length int64) mem.Fault {
		return mem.Fault{Corrupt: func(o int64, p []byte) {
			if o != 100 || len(p) != 50 {
				t.Errorf("Corrupt(%d, %d bytes), want 100, 50", o, len(p))
			}
			p[0] ^= 1
		}}
	})
	got = backendtest.ReadAll(t, b, "data/p", 100, 50)
	if got[0] != data[100]^1 || !bytes.Equal(got[1:], data[101:150]) {
		t.Fatal("corrupting hook not applied")
	}
	b.SetHook(nil)
	if got := backendtest.ReadAll(t, b, "data/p", 0, -1); !bytes.Equal(got, data) {
		t.Fatal("a read fault changed the stored file")
	}

	if err := b.Damage("data/p", func(d []byte) []byte { return d[:500] }); err != nil {
		t.Fatal(err)
	}
	if size, err := b.Stat(ctx, "data/p"); err != nil || size != 500 {
		t.Fatalf("after truncating damage: %d, %v", size, err)
	}
	if err := b.Damage("data/none", func(d []byte) []byte { return d }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Damage(missing): %v", err)
	}
}
