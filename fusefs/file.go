package fusefs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/repo"
)

// fileNode is a regular file inside a snapshot.
type fileNode struct {
	fs.Inode
	readOnly
	f    *FS
	snap *snapRef
	ino  uint64
	path string
	node *repo.Node

	mu      sync.Mutex
	offsets []int64 // chunk i holds bytes [offsets[i], offsets[i+1]); nil until opened
}

var (
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeStatfser  = (*fileNode)(nil)
)

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fillAttr(ctx, &out.Attr)
	return 0
}

func (n *fileNode) fillAttr(ctx context.Context, a *fuse.Attr) { fillNodeAttr(a, n.ino, n.node) }

func (n *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.f.statfs(out)
	return 0
}

// layout returns the file offset where each chunk starts, computed once from
// the chunk sizes in the index, so that a read anywhere in the file fetches
// only the chunks it covers. A file whose chunks do not add up to its size
// is damaged and cannot be opened.
func (n *fileNode) layout() ([]int64, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.offsets != nil {
		return n.offsets, 0
	}
	sizes, err := n.f.r.ChunkSizes(n.snap.space, n.node.Content)
	if err != nil {
		return nil, n.f.errno("cannot open file", err, "snapshot", n.snap.name, "file", n.path)
	}
	offs := prefixSums(sizes)
	if total := offs[len(offs)-1]; total != int64(n.node.Size) {
		err := &repo.CorruptError{What: "snapshot " + n.snap.name, Detail: "file " + n.path + ": chunks do not add up to its size"}
		return nil, n.f.errno("cannot open file", err, "snapshot", n.snap.name, "file", n.path, "size", n.node.Size, "chunk_bytes", total)
	}
	n.offsets = offs
	return offs, 0
}

func prefixSums(sizes []uint32) []int64 {
	offs := make([]int64, len(sizes)+1)
	for i, s := range sizes {
		offs[i+1] = offs[i] + int64(s)
	}
	return offs
}

// chunkAt returns the index of the chunk holding byte off (0 <= off < size).
func chunkAt(offs []int64, off int64) int {
	return sort.Search(len(offs)-1, func(i int) bool { return offs[i+1] > off })
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if wantsWrite(flags) {
		return nil, 0, syscall.EROFS
	}
	offs, errno := n.layout()
	if errno != 0 {
		return nil, 0, errno
	}
	// The content never changes: let the kernel keep its pages across opens.
	return &fileHandle{n: n, offs: offs, last: -1}, fuse.FOPEN_KEEP_CACHE, 0
}

// fileHandle is one open of a file. It remembers where the last read was so
// that sequential reading starts readahead.
type fileHandle struct {
	n    *fileNode
	offs []int64

	mu    sync.Mutex
	last  int // chunk of the previous read
	ahead int // first chunk not yet handed to the prefetcher
}

var (
	_ fs.FileReader = (*fileHandle)(nil)
	_ fs.FileWriter = (*fileHandle)(nil)
)

func (h *fileHandle) Write(context.Context, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := int64(h.n.node.Size)
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), size)
	i := chunkAt(h.offs, off)
	h.readahead(i)
	data, errno := h.chunk(ctx, i, off)
	if errno != 0 {
		return nil, errno
	}
	if end <= h.offs[i+1] {
		// The common case: the read lies in one chunk; hand out the cached
		// bytes without copying (they are never modified).
		return fuse.ReadResultData(data[off-h.offs[i] : end-h.offs[i]]), 0
	}
	n := copy(dest, data[off-h.offs[i]:])
	for j := i + 1; off+int64(n) < end; j++ {
		if data, errno = h.chunk(ctx, j, h.offs[j]); errno != 0 {
			return nil, errno
		}
		n += copy(dest[n:end-off], data)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// chunk returns chunk i, verified, or EIO with a log line naming the
// snapshot, the file and the chunk.
func (h *fileHandle) chunk(ctx context.Context, i int, off int64) ([]byte, syscall.Errno) {
	n := h.n
	id := n.node.Content[i]
	data, err := n.f.readChunk(ctx, n.snap.space, id)
	if err == nil {
		if int64(len(data)) != h.offs[i+1]-h.offs[i] { // ReadBlob checks the index's size; belt and braces
			err = &repo.CorruptError{What: "chunk " + id.Short(), Detail: "size differs from the index"}
		} else {
			return data, 0
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil, syscall.EINTR
	}
	return nil, n.f.errno("read failed", err, "snapshot", n.snap.name, "file", n.path,
		"chunk", id.String(), "chunk_index", i, "offset", off)
}
