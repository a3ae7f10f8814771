package repo

import (
	"context"
	"fmt"

	"memento/chunk"
)

// The backup code moved to repo/backup (issue 13), which imports repo, so the
// tests still in package repo cannot import it. They keep calling
// r.Backup(ctx, BackupOptions{...}) through this test-only shim: BackupOptions
// mirrors backup.BackupOptions field for field (so the two convert), and
// backup_hook_ext_test.go, an external test file of the same test binary,
// sets BackupForTest to backup.Backup. The integrator removes the shim once
// these tests live in packages that can import repo/backup.

// BackupOptions mirrors backup.BackupOptions; see its fields there.
type BackupOptions struct {
	Space   string
	DataDir string
	Paths   []string

	Host       string
	Tags       []string
	Parent     *Snapshot
	NoParent   bool
	Pipeline   *chunk.Pipeline
	Progress   *Progress
	Engram     *EngramInfo
	BeforeDir  func(rel string) error
	Redirect   func(rel string) string
	AfterFiles func() error
}

// BackupForTest is backup.Backup, set by backup_hook_ext_test.go.
var BackupForTest func(ctx context.Context, r *Repository, opts BackupOptions) (*Snapshot, error)

// Backup runs backup.Backup(ctx, r, opts).
func (r *Repository) Backup(ctx context.Context, opts BackupOptions) (*Snapshot, error) {
	return BackupForTest(ctx, r, opts)
}

// EngramRecorder is the part of backup.EngramRecorder the tests in package
// repo use (verify_helpers_test.go's backupSpace).
type EngramRecorder interface {
	Attach(opts *BackupOptions)
	Done() error
	Close() error
}

// NewEngramRecorderForTest is backup.NewEngramRecorder, set by
// backup_hook_ext_test.go.
var NewEngramRecorderForTest func(ctx context.Context, dataDir, space string) EngramRecorder

// NewEngramRecorder runs backup.NewEngramRecorder(ctx, dataDir, space).
func NewEngramRecorder(ctx context.Context, dataDir, space string) EngramRecorder {
	return NewEngramRecorderForTest(ctx, dataDir, space)
}

// archiver is the part of backup's archiver that unsafe_test.go's crafter
// uses to write hand-made trees and data blobs the way a backup does: a
// test-only copy of backup.archiver's storeChunk and saveTree.
type archiver struct {
	r      *Repository
	space  string
	key    chunk.Key
	packer *Packer
	known  map[chunk.ID]struct{}
	prog   *Progress
}

// storeChunk seals a chunk the repository lacks and hands it to the packer.
func (a *archiver) storeChunk(c *chunk.Chunk) error {
	if _, ok := a.known[c.ID]; ok {
		return nil
	}
	if !a.packer.Claim(c.ID) {
		return nil
	}
	var flags uint8
	if c.Compressed {
		flags |= FlagCompressed
	}
	a.prog.NewBytes.Add(int64(len(c.Raw)))
	return a.packer.Add(DataBlob, c.ID, flags, len(c.Raw), c.Stored)
}

// saveTree stores a tree blob (compressed: trees are JSON) and returns its ID.
func (a *archiver) saveTree(t *Tree) (chunk.ID, error) {
	for i := 0; i < len(t.Nodes); i++ {
		if t.Nodes[i].Type == "" { // a file that vanished while being read
			t.Nodes = append(t.Nodes[:i], t.Nodes[i+1:]...)
			i--
		}
	}
	b, err := EncodeTree(t)
	if err != nil {
		return chunk.ID{}, err
	}
	if len(b) > MaxBlobSize { // readers refuse larger blobs: fail now, not at restore
		return chunk.ID{}, fmt.Errorf("a directory of %d entries makes a tree of %d bytes, above the %d a blob may hold", len(t.Nodes), len(b), MaxBlobSize)
	}
	id := a.key.Sum(b)
	if _, ok := a.known[id]; ok || !a.packer.Claim(id) {
		return id, nil
	}
	stored, compressed := chunk.Compress(nil, b, chunk.DefaultLevel)
	var flags uint8
	if compressed {
		flags |= FlagCompressed
	}
	return id, a.packer.Add(TreeBlob, id, flags, len(b), stored)
}
