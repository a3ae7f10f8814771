package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/zeebo/blake3"

	"memento/chunk"
)

// Metadata files (index files, manifests, locks) share one envelope:
//
//	"MMTO" | u8 version | sealed body
//
// and are named by the BLAKE3 of the whole file. The kind ("index",
// "snapshot", "lock") is the associated data, so a file cannot pose as another.
// Version 1's body is the JSON; version 2's is the JSON compressed
// (chunk.Compress's stored form), written for index files in repositories
// of format 2 and later (FormatVersion).
const (
	fileMagic       = "MMTO"
	fileVersion     = 1
	fileVersionZstd = 2
	MaxMetadataFile = 256 << 20
)

// compressFile reports whether metadata files of kind are written
// compressed (envelope version 2): index files, in a repository of format
// 2 or later. Older binaries never meet one in the repositories they can
// open: a format-1 repository keeps getting version-1 envelopes. Manifests
// and locks stay version 1 (small, and read by every binary of format 1).
func (r *Repository) compressFile(kind string) bool {
	return kind == KindIndex && r.cfg.Version >= 2
}

// SaveFile seals v as JSON and writes it under dir, named by its hash.
func (r *Repository) SaveFile(ctx context.Context, dir, kind string, v any) ([32]byte, error) {
	buf, err := r.encodeFile(kind, v)
	if err != nil {
		return [32]byte{}, err
	}
	id := blake3.Sum256(buf)
	name := FileName(dir, id)
	if err := r.be.Write(ctx, name, bytes.NewReader(buf), int64(len(buf))); err != nil {
		return id, fmt.Errorf("write %s %s: %w", kind, name, err)
	}
	return id, nil
}

// LoadFile reads, verifies and decodes a metadata file into v.
func (r *Repository) LoadFile(ctx context.Context, name, kind string, v any) error {
	raw, err := ReadAll(ctx, r.be, name, MaxMetadataFile)
	if err != nil {
		return err
	}
	return r.openFile(raw, name, kind, v)
}

func (r *Repository) openFile(raw []byte, name, kind string, v any) error {
	what := kind + " " + name
	if blake3.Sum256(raw) != NameHash(name) {
		return Corruptf(what, "content does not match its name (hash mismatch)")
	}
	if len(raw) < len(fileMagic)+1 || string(raw[:4]) != fileMagic {
		return Corruptf(what, "no MMTO header")
	}
	if raw[4] != fileVersion && raw[4] != fileVersionZstd {
		return fmt.Errorf("%s: %w: file version %d", what, ErrFormat, raw[4])
	}
	plain, err := r.seal.open(nil, raw[5:], []byte(kind))
	if err != nil {
		return &CorruptError{What: what, Detail: "cannot be authenticated", Err: err}
	}
	if raw[4] == fileVersionZstd {
		if plain, err = chunk.DecompressMax(nil, plain, MaxMetadataFile); err != nil {
			return &CorruptError{What: what, Detail: "cannot be decompressed", Err: err}
		}
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return Corruptf(what, "invalid JSON: %v", err)
	}
	return nil
}
