package repo

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openWith(t *testing.T, tr *testRepo, password string, cache KeyCache) (*Repository, error) {
	t.Helper()
	return Open(context.Background(), tr.be, Options{Password: password, CacheDir: tr.cache, KeyCache: cache})
}

// Keys are listed with the one in use; a second password opens the same
// repository; the key in use and the last key cannot be removed; a password
// change leaves one key, and only the new password opens it.
func TestKeyAddRemovePasswd(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	keys, err := tr.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !keys[0].Current || keys[0].KDF != "argon2id" || keys[0].Params != fastKDF || keys[0].ID != tr.CurrentKey() {
		t.Fatalf("keys of a new repository: %+v (current %s)", keys, tr.CurrentKey())
	}
	first := keys[0]
	if err := tr.RemoveKey(ctx, first.ID); !errors.Is(err, ErrKeyInUse) {
		t.Fatalf("removing the only key, in use: %v, want ErrKeyInUse", err)
	}
	if _, err := tr.AddKey(ctx, "", fastKDF); err == nil {
		t.Fatal("a key with an empty password was added")
	}
	second, err := tr.AddKey(ctx, "second password", fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := openWith(t, tr, "second password", nil)
	if err != nil {
		t.Fatalf("open with the added key: %v", err)
	}
	if r2.CurrentKey() != second.ID || r2.Config().ID != tr.Config().ID {
		t.Fatalf("opened with key %s of repository %s, want %s of %s", r2.CurrentKey(), r2.Config().ID, second.ID, tr.Config().ID)
	}
	k, err := r2.FindKey(ctx, first.ID[:6])
	if err != nil || k.ID != first.ID || k.Current {
		t.Fatalf("FindKey(%s) = %+v, %v", first.ID[:6], k, err)
	}
	if _, err := r2.FindKey(ctx, "xyz"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("FindKey(xyz): %v, want ErrInvalidArgument", err)
	}
	missing := "0000"
	if first.ID[:4] == missing || second.ID[:4] == missing {
		missing = "ffff"
	}
	if _, err := r2.FindKey(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindKey(%s): %v, want ErrNotFound", missing, err)
	}
	if err := r2.RemoveKey(ctx, second.ID); !errors.Is(err, ErrKeyInUse) {
		t.Fatalf("removing the key in use: %v, want ErrKeyInUse", err)
	}
	if err := r2.RemoveKey(ctx, first.ID); err != nil {
		t.Fatalf("removing the first key: %v", err)
	}
	if _, err := openWith(t, tr, testPassword, nil); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("open with the removed key's password: %v, want ErrWrongPassword", err)
	}
	third, err := r2.ChangePassword(ctx, "third password", fastKDF)
	if err != nil {
		t.Fatal(err)
	}
	if r2.CurrentKey() != third.ID {
		t.Fatalf("current key after passwd %s, want %s", r2.CurrentKey(), third.ID)
	}
	keys, err = r2.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0].ID != third.ID || !keys[0].Current {
		t.Fatalf("keys after passwd: %+v, %v", keys, err)
	}
	if _, err := openWith(t, tr, "second password", nil); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("old password after passwd: %v, want ErrWrongPassword", err)
	}
	if _, err := openWith(t, tr, "third password", nil); err != nil {
		t.Fatalf("new password after passwd: %v", err)
	}
}

// A key file written with the parameters of before the calibration (64 MiB,
// 2 threads) still opens: readers take the parameters from the key file.
func TestKeyOldKDFParamsOpen(t *testing.T) {
	tr := newTestRepo(t, InitOptions{KDF: KDFParams{Time: 2, MemoryKiB: 64 << 10, Threads: 2}})
	keys, err := tr.Keys(context.Background())
	if err != nil || len(keys) != 1 || keys[0].Params.MemoryKiB != 64<<10 || keys[0].Params.Threads != 2 {
		t.Fatalf("keys: %+v, %v", keys, err)
	}
	if _, err := openWith(t, tr, testPassword, nil); err != nil {
		t.Fatal(err)
	}
}

// Calibration never goes below OWASP's floor nor above the readers' bound.
func TestCalibrateKDF(t *testing.T) {
	if p := CalibrateKDF(0); p != MinKDF {
		t.Errorf("CalibrateKDF(0) = %+v, want the floor %+v", p, MinKDF)
	}
	if p := CalibrateKDF(time.Hour); p.Time != maxKDFTime || p.MemoryKiB != MinKDF.MemoryKiB {
		t.Errorf("CalibrateKDF(1h) = %+v, want time %d", p, maxKDFTime)
	}
	p := CalibrateKDF(100 * time.Millisecond)
	if !p.KDFFloorOK() || p.validate() != nil {
		t.Errorf("CalibrateKDF(100ms) = %+v: below the floor or invalid", p)
	}
	for _, c := range []struct {
		p  KDFParams
		ok bool
	}{
		{MinKDF, true},
		{KDFParams{Time: 1, MemoryKiB: 46 << 10, Threads: 1}, true},
		{KDFParams{Time: 2, MemoryKiB: 64 << 10, Threads: 2}, true},
		{KDFParams{Time: 1, MemoryKiB: 19 << 10, Threads: 1}, false},
		{KDFParams{Time: 16, MemoryKiB: 8 << 10, Threads: 1}, false},
		{fastKDF, false},
	} {
		if got := c.p.KDFFloorOK(); got != c.ok {
			t.Errorf("%+v.KDFFloorOK() = %v, want %v", c.p, got, c.ok)
		}
	}
}

// With a key cache, an open stores the unlocked key; the next open with the
// same password needs no key file (so no argon2id); another password gets
// nothing from the cache; a damaged entry is ignored.
func TestKeyCache(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	id := tr.Config().ID
	cache := NewMemKeyCache()
	if _, err := openWith(t, tr, testPassword, cache); err != nil {
		t.Fatal(err)
	}
	entry := cache.m[id]
	var e keyCacheEntry
	if err := json.Unmarshal(entry, &e); err != nil || e.Version != keyCacheVersion || e.Key != DirKeys+"/"+tr.CurrentKey() {
		t.Fatalf("cache entry %s: %v", entry, err)
	}
	if _, err := openWith(t, tr, "wrong", cache); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password with a cached key: %v, want ErrWrongPassword", err)
	}
	keysDir := filepath.Join(tr.dir, DirKeys)
	if err := os.Rename(keysDir, keysDir+".away"); err != nil {
		t.Fatal(err)
	}
	r, err := openWith(t, tr, testPassword, cache)
	if err != nil {
		t.Fatalf("open from the cache without key files: %v", err)
	}
	if r.CurrentKey() != tr.CurrentKey() {
		t.Fatalf("current key from the cache %s, want %s", r.CurrentKey(), tr.CurrentKey())
	}
	if _, err := openWith(t, tr, testPassword, nil); err == nil {
		t.Fatal("opened without key files and without the cache")
	}
	if err := os.Rename(keysDir+".away", keysDir); err != nil {
		t.Fatal(err)
	}
	cache.m[id] = []byte(`{"version":1,"secret":{"data_key":"AAAA"}}`)
	if _, err := openWith(t, tr, testPassword, cache); err != nil {
		t.Fatalf("open past a damaged cache entry: %v", err)
	}
	if !json.Valid(cache.m[id]) || string(cache.m[id]) == `{"version":1,"secret":{"data_key":"AAAA"}}` {
		t.Fatalf("the damaged entry was not replaced: %s", cache.m[id])
	}
	// An insecure repository has no cost to save: nothing is cached.
	ins := newTestRepo(t, InitOptions{Insecure: true})
	if _, err := openWith(t, ins, "any", cache); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.m[ins.Config().ID]; ok {
		t.Fatal("the key of an insecure repository was cached")
	}
}
