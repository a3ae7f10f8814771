package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"memento/chunk"
	"memento/index"
	"memento/repo/directio"
)

// Restore and L2 verification read many blobs that sit next to each other in
// a pack (a file's chunks are packed in file order by backup). One ranged
// read of a run of neighbours costs one request instead of one per blob
// (an open, a stat and a close on the local backend, a round trip on S3),
// and lets the disk stream. Runs are bounded so that the memory held per
// read stays small, and a short gap of blobs nobody asked for is read
// through rather than split into two requests.

const (
	// runMaxBytes bounds one read of a run: big enough that the request
	// cost vanishes, small enough that a few runs in flight per file stay
	// cheap in memory. Less readSlack, so that a run and the slack of an
	// aligned read fit a 4 MiB pooled buffer, not an 8 MiB one.
	runMaxBytes = 4<<20 - ReadSlack
	// runMaxGap is the most bytes of unwanted blobs read through between
	// two wanted ones; reading 256 KiB costs less than another request.
	runMaxGap = 256 << 10
)

// runBlob is one blob of a run.
type runBlob struct {
	ID  chunk.ID
	Loc index.Location
}

// blobRun is neighbouring blobs of one pack, in pack order, fetched with
// one ranged read of bytes [off, off+n).
type blobRun struct {
	pack  [32]byte
	off   int64
	n     int64
	blobs []runBlob
}

// newBlobRun starts a run with one blob.
func newBlobRun(id chunk.ID, loc index.Location) *blobRun {
	return &blobRun{pack: loc.Pack, off: int64(loc.Offset), n: int64(loc.Length), blobs: []runBlob{{id, loc}}}
}

// add appends the blob at loc to the run if it is in the same pack, after
// the run's end, within gap bytes of it, and keeps the read within max
// bytes. It reports whether it did.
func (r *blobRun) add(id chunk.ID, loc index.Location, max, gap int64) bool {
	start, end := int64(loc.Offset), int64(loc.Offset)+int64(loc.Length)
	if loc.Pack != r.pack || start < r.off+r.n || start-(r.off+r.n) > gap || end-r.off > max {
		return false
	}
	r.n = end - r.off
	r.blobs = append(r.blobs, runBlob{id, loc})
	return true
}

// read fetches the run's bytes into a pooled buffer (give it back with
// chunk.PutBuffer). Errors name the pack and say what is wrong with it.
func (r *blobRun) read(ctx context.Context, be Backend) (*[]byte, error) {
	rc, err := be.Open(ctx, PackName(r.pack), r.off, r.n)
	if err != nil {
		return nil, r.readError(ctx, err)
	}
	defer rc.Close()
	return r.readFull(ctx, rc)
}

// readFull reads the run from rc into a pooled buffer.
func (r *blobRun) readFull(ctx context.Context, rc io.Reader) (*[]byte, error) {
	buf := chunk.Buffer(int(r.n))
	*buf = (*buf)[:r.n]
	if _, err := io.ReadFull(rc, *buf); err != nil {
		chunk.PutBuffer(buf)
		return nil, r.readError(ctx, err)
	}
	return buf, nil
}

// readError says what a failed read of the run means for its pack.
func (r *blobRun) readError(ctx context.Context, err error) error {
	what := "pack " + ShortHex(r.pack)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &CorruptError{What: what, Detail: fmt.Sprintf("truncated: bytes %d..%d cannot be read", r.off, r.off+r.n), Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return Corruptf(what, "missing from the repository")
	}
	return fmt.Errorf("%s: read bytes %d..%d: %w", what, r.off, r.off+r.n, err)
}

// intoReader is what a Backend's reader may offer besides io.Reader: the
// whole range read into buf (at least its length plus readSlack bytes) and
// returned as a slice of buf. The local backend reads large ranges around
// the page cache that way (O_DIRECT needs an aligned buffer, offset and
// length, so it reads the aligned superset of the range into the slack).
type intoReader interface {
	ReadInto(buf []byte) ([]byte, error)
}

// ReadSlack is the spare room an intoReader needs beyond the range.
const ReadSlack = directio.ReadSlack

// runBuf is a run's bytes (b) within a pooled buffer (mem) or the caller's
// memory (own, from StreamOptions.Alloc); give it back with free.
type runBuf struct {
	mem *[]byte
	own []byte
	a   blobAlloc
	b   []byte
}

func (rb runBuf) free() {
	if rb.mem != nil {
		chunk.PutBuffer(rb.mem)
	}
	rb.a.put(rb.own)
}

// fetch is read into a buffer with room for an intoReader: the run's bytes
// are rb.b. Errors are those of read. L2 verify and the FUSE mount (StreamOptions.
// AroundCache) use it, so large runs of a local repository go around the
// page cache: about 8 % less CPU for verify at the same wall time, and for
// a 1 GiB file read through a mount a third less CPU and 25 % less wall
// time (the kernel is filling the mount's page cache with the same
// gigabyte); neither evicts the host's cached data any more. Restore does
// too since issue 18's session 8 (0.3-0.5 s less system time per GiB; see
// repo/restore/fetch.go). It had not before, when a file read one or two
// runs ahead and, without the kernel's readahead, each waited for the
// device (15 % longer for 5 % less CPU); its read-ahead now keeps a dozen
// of the data dirs' small runs in flight.
//
// With a.alloc or a.mem (StreamOptions.Alloc, Mem) the buffer is the
// caller's memory while it has room.
func (r *blobRun) fetch(ctx context.Context, be Backend, a blobAlloc) (runBuf, error) {
	rc, err := be.Open(ctx, PackName(r.pack), r.off, r.n)
	if err != nil {
		return runBuf{}, r.readError(ctx, err)
	}
	defer rc.Close()
	ir, ok := rc.(intoReader)
	if !ok {
		buf, err := r.readFull(ctx, rc)
		if err != nil {
			return runBuf{}, err
		}
		return runBuf{mem: buf, b: *buf}, nil
	}
	if own := a.take(int(r.n) + ReadSlack); own != nil {
		b, err := ir.ReadInto(own[:cap(own)])
		if err != nil {
			a.put(own)
			return runBuf{}, r.readError(ctx, err)
		}
		return runBuf{own: own, a: a, b: b}, nil
	}
	mem := chunk.Buffer(int(r.n) + ReadSlack)
	b, err := ir.ReadInto((*mem)[:cap(*mem)])
	if err != nil {
		chunk.PutBuffer(mem)
		return runBuf{}, r.readError(ctx, err)
	}
	return runBuf{mem: mem, b: b}, nil
}

// sealed returns blob k's stored bytes within the run's buffer b.
func (r *blobRun) sealed(b []byte, k int) []byte {
	l := r.blobs[k].Loc
	off := int64(l.Offset) - r.off
	return b[off : off+int64(l.Length)]
}
