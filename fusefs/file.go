package fusefs

import (
	"context"
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"memento/chunk"
	"memento/repo"
	"memento/repo/lru"
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

	mu     sync.Mutex
	last   int // chunk of the previous read
	ahead  int // first chunk not yet handed to the prefetcher
	behind int // first chunk not yet dropped behind a sequential reader
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
	i, j := chunkAt(h.offs, off), chunkAt(h.offs, end-1)
	h.readahead(i, j)
	// The kernel asks for up to 1 MiB: one chunk or a part of one (WAL,
	// cold segments), or many small ones (a page file's), those not cached
	// yet fetched together. The reply is written to the kernel straight
	// from the chunks (writev of their slices, chunkReply), not copied into
	// the request's buffer first: the entries stay pinned until the reply
	// is written, so that the chunks' memory is recycled (chunkMem) only
	// once the kernel has the bytes.
	data, pinned, errno := h.chunks(ctx, i, j, make([][]byte, 0, j-i+1), make([]*chunkEntry, 0, j-i+1))
	if errno != 0 {
		h.n.f.chunks.Unpin(pinned)
		return nil, errno
	}
	return newReply(h.n.f.chunks, pinned, data, int(off-h.offs[i]), int(end-off), dest), 0
}

// newReply is the reply of size bytes starting skip bytes into the first
// of the chunks data (pinned by pins, in c): the chunks themselves
// (chunkReply, unpinned once written), or a copy into dest when they are
// too many for one writev (then unpinned at once).
func newReply(c *lru.Cache[chunk.ID, []byte], pins []*chunkEntry, data [][]byte, skip, size int, dest []byte) fuse.ReadResult {
	data[0] = data[0][skip:]
	left := size
	for k, d := range data {
		data[k] = d[:min(len(d), left)]
		left -= len(data[k])
	}
	if len(data) > maxReplyVecs {
		// More slices than one writev takes (IOV_MAX is 1024; go-fuse adds
		// two headers): chunks far smaller than any parameter set cuts.
		n := 0
		for _, d := range data {
			n += copy(dest[n:], d)
		}
		c.Unpin(pins)
		return fuse.ReadResultData(dest[:n])
	}
	return &chunkReply{c: c, pins: pins, vecs: data, size: size}
}

// maxReplyVecs bounds the slices of a vectored reply (chunkReply).
const maxReplyVecs = 512

// chunkReply is the reply to a read: slices of cached chunks, pinned until
// go-fuse has written them to the kernel (Done). Its Slices method makes
// go-fuse send them with one writev (the mount disables splicing) instead
// of concatenating them into the request's buffer; Bytes is the fallback
// of a server that cannot (go-fuse's debug output, other transports).
type chunkReply struct {
	c    *lru.Cache[chunk.ID, []byte]
	pins []*chunkEntry
	vecs [][]byte
	size int
}

var _ fuse.ReadResult = (*chunkReply)(nil)

// Slices returns the reply's bytes, in order (go-fuse's vectored write).
func (r *chunkReply) Slices() ([][]byte, fuse.Status) { return r.vecs, fuse.OK }

// Bytes concatenates the reply into buf (grown if it is too small).
func (r *chunkReply) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, v := range r.vecs {
		buf = append(buf, v...)
	}
	return buf, fuse.OK
}

// Size is the reply's length in bytes.
func (r *chunkReply) Size() int { return r.size }

// Done unpins the chunks once go-fuse no longer needs their bytes. It may
// be called more than once: only the first call unpins.
func (r *chunkReply) Done() {
	if r.pins != nil {
		r.c.Unpin(r.pins)
		r.pins, r.vecs = nil, nil
	}
}

// chunks returns chunks i..j, verified, appended to out. The cached ones are
// used as they are, those another reader or the readahead is loading are
// waited for, and the rest are fetched with one batched read
// (Repository.StreamBlobs). A chunk that cannot be read gives EIO with a
// log line naming the snapshot, the file and the chunk. Every entry it
// claimed is pinned and appended to pinned, also on failure: the caller
// unpins them (lru.Cache.Unpin) once it is done with the bytes.
func (h *fileHandle) chunks(ctx context.Context, i, j int, out [][]byte, pinned []*chunkEntry) ([][]byte, []*chunkEntry, syscall.Errno) {
	f, ids := h.n.f, h.n.node.Content
	type pending struct {
		k int // index into out
		e *chunkEntry
	}
	var waits, mine []pending
	f.chunks.ClaimAll(ids[i:j+1], true, func(k int, e *chunkEntry, st lru.State) {
		pinned = append(pinned, e)
		var v []byte
		switch st {
		case lru.Hit:
			v = e.Value()
		case lru.Wait:
			waits = append(waits, pending{k, e})
		case lru.Own:
			mine = append(mine, pending{k, e})
		}
		out = append(out, v)
	})
	var firstErr error
	errAt := -1
	fail := func(k int, err error) {
		if errAt < 0 || k < errAt {
			firstErr, errAt = err, k
		}
	}
	if len(mine) > 0 {
		entries := make([]*chunkEntry, len(mine))
		for m, p := range mine {
			entries[m] = p.e
		}
		f.loadChunks(h.n.snap.space, entries)
		for _, p := range mine {
			v, err := p.e.Result()
			if err != nil {
				fail(p.k, err)
			}
			out[p.k] = v
		}
	}
	for _, p := range waits {
		v, err := p.e.Wait(ctx)
		if err != nil {
			fail(p.k, err)
		}
		out[p.k] = v
	}
	if errAt < 0 {
		for k, d := range out {
			c := i + k
			if int64(len(d)) != h.offs[c+1]-h.offs[c] { // ReadBlob checks the index's size; belt and braces
				fail(k, &repo.CorruptError{What: "chunk " + ids[c].Short(), Detail: "size differs from the index"})
				break
			}
		}
	}
	if errAt < 0 {
		return out, pinned, 0
	}
	c := i + errAt
	if errors.Is(firstErr, context.Canceled) && ctx.Err() != nil {
		return nil, pinned, syscall.EINTR
	}
	return nil, pinned, f.errno("read failed", firstErr, "snapshot", h.n.snap.name, "file", h.n.path,
		"chunk", ids[c].String(), "chunk_index", c, "offset", h.offs[c])
}
