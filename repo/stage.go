package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/zeebo/blake3"

	"memento/chunk"
)

// Stager is a Backend that writes a file in two steps: Stage makes the
// bytes durable where no reader or List sees them, commit publishes them
// under name (visible and durable when it returns), abort drops them; one
// of the two must be called. The local backend is one; on the others (an
// S3 PUT is atomic and has no fsync to overlap) StageFile writes at commit.
type Stager interface {
	Stage(ctx context.Context, name string, r io.Reader, size int64) (commit func(context.Context) error, abort func(), err error)
}

// StagedFile is a metadata file written but not yet published (StageFile).
type StagedFile struct {
	ID     [32]byte
	Name   string
	commit func(context.Context) error
	abort  func()
}

// Commit publishes the file: when it returns nil, the file is in the
// repository, durably where the backend can be.
func (f *StagedFile) Commit(ctx context.Context) error { return f.commit(ctx) }

// Abort drops the staged file (a no-op after Commit).
func (f *StagedFile) Abort() { f.abort() }

// StageFile is SaveFile in two steps: the file's bytes are written (and
// fsynced) now, the file appears in the repository only at Commit. A
// writer whose file must appear only after others are durable (a WAL
// record after the packs and the index file naming its chunks) stages it
// while those are written: its own write is then off the chain of writes
// that must follow each other.
func (r *Repository) StageFile(ctx context.Context, dir, kind string, v any) (*StagedFile, error) {
	buf, err := r.encodeFile(kind, v)
	if err != nil {
		return nil, err
	}
	id := blake3.Sum256(buf)
	name := FileName(dir, id)
	st, ok := r.be.(Stager)
	if !ok {
		return &StagedFile{ID: id, Name: name, abort: func() {},
			commit: func(ctx context.Context) error {
				if err := r.be.Write(ctx, name, bytes.NewReader(buf), int64(len(buf))); err != nil {
					return fmt.Errorf("write %s %s: %w", kind, name, err)
				}
				return nil
			}}, nil
	}
	commit, abort, err := st.Stage(ctx, name, bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return nil, fmt.Errorf("write %s %s: %w", kind, name, err)
	}
	return &StagedFile{ID: id, Name: name, abort: abort, commit: func(ctx context.Context) error {
		if err := commit(ctx); err != nil {
			return fmt.Errorf("write %s %s: %w", kind, name, err)
		}
		return nil
	}}, nil
}

// encodeFile is a metadata file's bytes: magic, version, sealed JSON
// (compressed for the kinds compressFile names).
func (r *Repository) encodeFile(kind string, v any) ([]byte, error) {
	var plain []byte
	if f, ok := v.(IndexFile); ok {
		plain = f.appendJSON(make([]byte, 0, 64+len(f.Packs)*128+indexFileBlobs(f)*150))
	} else {
		var err error
		if plain, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encode %s: %w", kind, err)
		}
	}
	version := byte(fileVersion)
	if r.compressFile(kind) {
		if c, ok := chunk.CompressFastest(nil, plain); ok {
			plain, version = c, fileVersionZstd
		}
	}
	buf := make([]byte, 0, len(fileMagic)+1+len(plain)+r.seal.overhead())
	buf = append(buf, fileMagic...)
	buf = append(buf, version)
	return r.seal.seal(buf, plain, []byte(kind)), nil
}
