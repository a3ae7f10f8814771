package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"memento/chunk"
	"memento/index"
)

// testPacks is an index's worth of packs: 300 blobs with distinct IDs.
func testPacks() []index.PackInfo {
	var packs []index.PackInfo
	for p := range 3 {
		pi := index.PackInfo{ID: blake3.Sum256([]byte{byte(p)}), Size: 1 << 20, Space: "tenant_01"}
		for b := range 100 {
			pi.Blobs = append(pi.Blobs, index.BlobInfo{ID: blake3.Sum256([]byte{byte(p), byte(b), 1}), Type: 1, Flags: 1,
				Offset: uint32(b * 1000), Length: 1000, RawLength: 4000})
		}
		packs = append(packs, pi)
	}
	return packs
}

// envelopeVersions returns the envelope version byte of every file in dir.
func envelopeVersions(t *testing.T, dir string) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no files in %s: %v", dir, err)
	}
	var vs []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || len(b) < 5 || string(b[:4]) != fileMagic {
			t.Fatalf("%s: %q..., %v", n, b[:min(len(b), 5)], err)
		}
		vs = append(vs, b[4])
	}
	return vs
}

// TestIndexFilesCompressedInFormat2: a new repository is of format 2 and
// writes its index files as envelope version 2 (compressed), which load
// back to the same packs; manifests stay version 1.
func TestIndexFilesCompressedInFormat2(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{})
	if tr.Config().Version != FormatVersion || FormatVersion < 2 {
		t.Fatalf("new repository of format %d, binary writes %d; want 2 or later", tr.Config().Version, FormatVersion)
	}
	packs := testPacks()
	id, err := tr.SaveFile(ctx, DirIndex, KindIndex, toIndexFile(packs))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(tr.dir, filepath.FromSlash(FileName(DirIndex, id))))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(toIndexFile(packs))
	if raw[4] != fileVersionZstd || len(raw) >= len(plain) {
		t.Fatalf("index file: envelope version %d, %d bytes for %d bytes of JSON; want version 2, compressed", raw[4], len(raw), len(plain))
	}
	files, damaged, err := tr.LoadIndexFiles(ctx, []string{FileName(DirIndex, id)}, false)
	if err != nil || len(damaged) != 0 || len(files) != 1 || !reflect.DeepEqual(files[0].Packs, packs) {
		t.Fatalf("load: %d files, damaged %q, %v", len(files), damaged, err)
	}
	// Not for other kinds: a lock or manifest is read by every binary.
	lid, err := tr.SaveFile(ctx, DirLocks, kindLock, lockInfo{Version: 1, Host: strings.Repeat("h", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if vs := envelopeVersions(t, filepath.Join(tr.dir, DirLocks)); !bytes.Contains(vs, []byte{1}) || bytes.Contains(vs, []byte{2}) {
		t.Fatalf("lock %s: envelope versions %v, want 1", ShortHex(lid), vs)
	}
}

// TestFormat1RepositoryKeepsPlainIndexFiles: a repository of format 1
// (made by an older binary) keeps getting version-1 envelopes, which the
// binaries of format 1 read.
func TestFormat1RepositoryKeepsPlainIndexFiles(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t, InitOptions{Cipher: EncryptionXChaCha}) // format 1's only cipher
	p := filepath.Join(tr.dir, ConfigName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	chmod(t, p, 0o600)
	if err := os.WriteFile(p, bytes.Replace(b, fmt.Appendf(nil, `"version": %d`, FormatVersion), []byte(`"version": 1`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, tr.be, Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatal(err)
	}
	if r.Config().Version != 1 {
		t.Fatalf("config version %d", r.Config().Version)
	}
	if err := r.SaveIndex(ctx, testPacks()); err != nil {
		t.Fatal(err)
	}
	if vs := envelopeVersions(t, filepath.Join(tr.dir, DirIndex)); !bytes.Equal(vs, []byte{1}) {
		t.Fatalf("index files of a format-1 repository: envelope versions %v, want [1]", vs)
	}
}

// TestCompressedEnvelopeDamage: a version-2 envelope whose sealed body is
// not a compressed stored form, or declares more than MaxMetadataFile, is
// corrupt (not a panic, not a format error); version 3 is a newer format.
func TestCompressedEnvelopeDamage(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	plain, _ := json.Marshal(toIndexFile(testPacks()))
	good, ok := chunk.Compress(nil, plain, chunk.LevelFastest)
	if !ok {
		t.Fatal("index JSON does not compress")
	}
	// A single-segment zstd frame declaring MaxMetadataFile+1 bytes of
	// content (frame header descriptor 0xe0: 8-byte content size), then
	// one empty last raw block.
	bomb := []byte{0x01, 0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	bomb = binary.LittleEndian.AppendUint64(bomb, MaxMetadataFile+1)
	bomb = append(bomb, 0x01, 0x00, 0x00)
	env := func(version byte, body []byte) ([]byte, string) {
		raw := tr.seal.seal([]byte(fileMagic+string([]byte{version})), body, []byte(KindIndex))
		return raw, FileName(DirIndex, blake3.Sum256(raw))
	}
	raw, name := env(2, good)
	var f IndexFile
	if err := tr.openFile(raw, name, KindIndex, &f); err != nil || len(f.Packs) != 3 {
		t.Fatalf("good version-2 envelope: %d packs, %v", len(f.Packs), err)
	}
	for _, tt := range []struct {
		what string
		body []byte
		want string
	}{
		{"plain JSON", plain, "unknown format byte 0x7b"},
		{"truncated frame", good[:len(good)/2], "cannot be decompressed"},
		{"unknown format", append([]byte{0x7f}, good[1:]...), "unknown format byte 0x7f"},
		{"over the limit", bomb, "content size 268435457 > limit 268435456"},
		{"empty", nil, "too short"},
		{"valid but binary", mustCompress(t, bytes.Repeat([]byte{0, 1, 2, 3}, 1000)), "invalid JSON"},
	} {
		raw, name := env(2, tt.body)
		err := tr.openFile(raw, name, KindIndex, new(IndexFile))
		var ce *CorruptError
		if !errors.As(err, &ce) || errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want a CorruptError saying %q", tt.what, err, tt.want)
		}
	}
	raw, name = env(3, good)
	if err := tr.openFile(raw, name, KindIndex, new(IndexFile)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "file version 3") {
		t.Errorf("envelope version 3: %v", err)
	}
}

func mustCompress(t *testing.T, b []byte) []byte {
	t.Helper()
	c, ok := chunk.Compress(nil, b, chunk.LevelFastest)
	if !ok {
		t.Fatal("does not compress")
	}
	return c
}
