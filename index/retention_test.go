package index

import (
	"path/filepath"
	"testing"
	"time"
)

// The retention cache keeps, per pack, the latest date it was told (a
// lower bound of the storage's), in whole seconds; Reset drops it.
func TestRetainedUntil(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := [32]byte{1}, [32]byte{2}, [32]byte{3}
	if got, err := ix.RetainedUntil([][32]byte{a, b}); err != nil || len(got) != 0 {
		t.Fatalf("empty cache: %v %v", got, err)
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 900_000_000, time.UTC)
	if err := ix.SetRetainedUntil(map[[32]byte]time.Time{a: t0, b: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// an earlier date does not replace a later one; a later one does
	if err := ix.SetRetainedUntil(map[[32]byte]time.Time{a: t0.Add(-time.Hour), b: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, err := ix.RetainedUntil([][32]byte{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[a].Equal(t0.Truncate(time.Second)) || !got[b].Equal(t0.Add(2*time.Hour).Truncate(time.Second)) {
		t.Fatalf("cached %v", got)
	}
	if err := ix.Reset(); err != nil {
		t.Fatal(err)
	}
	if got, err := ix.RetainedUntil([][32]byte{a, b}); err != nil || len(got) != 0 {
		t.Fatalf("after Reset: %v %v", got, err)
	}
}
