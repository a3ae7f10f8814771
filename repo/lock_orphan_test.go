package repo

import (
	"context"
	"errors"
	"strings"
	"testing"

	"memento/repo/backend/mem"
)

// TestLockLeftByThisProcessIsStale: a lock this process released while its
// file could not be deleted (the repository unreachable at that moment, as a
// NAS that went away in the middle of an agent's prune) does not block this
// process until LockStale; a lock it still holds does.
func TestLockLeftByThisProcessIsStale(t *testing.T) {
	ctx := context.Background()
	be := mem.New("orphan")
	if _, err := Init(ctx, be, InitOptions{Password: testPassword, KDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, Options{Password: testPassword, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	held, err := r.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, true, "prune"); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second exclusive lock while the first is held: %v, want ErrLocked", err)
	}
	gone := errors.New("repository unreachable")
	be.FailOn(mem.OpDelete, func(name string) bool { return strings.HasPrefix(name, "locks/") }, gone)
	if err := held.Unlock(); !errors.Is(err, gone) {
		t.Fatalf("Unlock with the lock file undeletable: %v, want %v", err, gone)
	}
	be.SetHook(nil)
	ls, err := r.Locks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || !ls[0].Stale || !strings.Contains(ls[0].Reason, "left by this process") {
		t.Fatalf("locks after a failed release: %+v, want one stale lock left by this process", ls)
	}
	again, err := r.Lock(ctx, true, "prune")
	if err != nil {
		t.Fatalf("the lock this process left behind blocks it: %v", err)
	}
	if err := again.Unlock(); err != nil {
		t.Fatal(err)
	}
}
