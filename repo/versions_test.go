package repo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNewerVersionsRefused: a file of a version newer than this binary knows
// is refused with ErrFormat ("upgrade memento"), never misread.
func TestNewerVersionsRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("index file", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{})
		id, err := tr.SaveFile(ctx, DirIndex, KindIndex, IndexFile{Version: 2})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = tr.LoadIndexFiles(ctx, []string{FileName(DirIndex, id)}, false)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "upgrade memento") {
			t.Fatalf("loading a version-2 index file: %v", err)
		}
		// Open tolerates it (skipping it, with a warning), but never merges it.
		files, damaged, err := tr.LoadIndexFiles(ctx, []string{FileName(DirIndex, id)}, true)
		if err != nil || len(files) != 0 || len(damaged) != 1 {
			t.Fatalf("tolerant load: %d files, damaged %q, %v", len(files), damaged, err)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{})
		m := &Manifest{Version: ManifestVersion + 1, Time: time.Now().UTC(), Paths: []string{"/x"}}
		msg, err := m.signedBytes()
		if err != nil {
			t.Fatal(err)
		}
		m.Signature = ed25519.Sign(tr.signKey, msg)
		id, err := tr.SaveFile(ctx, DirSnapshots, kindSnapshot, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.LoadSnapshotFile(ctx, id); !errors.Is(err, ErrFormat) {
			t.Fatalf("manifest version %d: %v", m.Version, err)
		}
	})
	t.Run("config", func(t *testing.T) {
		tr := newTestRepo(t, InitOptions{})
		p := filepath.Join(tr.dir, "config")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		chmod(t, p, 0o600)
		cur, next := fmt.Sprintf(`"version": %d`, FormatVersion), fmt.Sprintf(`"version": %d`, FormatVersion+1)
		if !strings.Contains(string(b), cur) {
			t.Fatalf("config has no %s:\n%s", cur, b)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), cur, next, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), fmt.Sprintf("repository format version %d (this binary reads 1..%d)", FormatVersion+1, FormatVersion)) {
			t.Fatalf("open a version-2 repository: %v", err)
		}
	})
	t.Run("tree and pack", func(t *testing.T) {
		if _, err := DecodeTree([]byte(`{"v":3,"nodes":[]}`)); !errors.Is(err, ErrFormat) {
			t.Errorf("tree v3: %v", err)
		}
		hdr := encodePackHeader("s", nil)
		hdr[0] = 2
		if _, _, err := decodePackHeader(hdr, 0); !errors.Is(err, ErrFormat) {
			t.Errorf("pack header v2: %v", err)
		}
	})
}
