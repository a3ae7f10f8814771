package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/restic/chunker"
)

// Chunker cuts a stream into content-defined chunks with restic's Rabin
// fingerprint chunker, configured by Params. It adds to restic/chunker:
// parameter validation, reuse of the 512 KiB read buffer across streams
// (a backup chunks many small files), and a buffer contract that never
// reallocates: Next fills the caller's buffer, which must hold Params.Max.
// A Chunker is not safe for concurrent use.
//
// Fixed-size parameters (Min == Max: the WAL's and warm page file's) cut
// every Max bytes whatever the content, so such a Chunker reads straight
// into the caller's buffer instead of running restic's chunker, which would
// read into its own buffer and copy every byte out again (a tenth of a first
// backup's CPU went to that copy). The chunks are the same: restic's chunker
// cuts at exactly Max when Min == Max (TestChunkerFixedMatchesRabin).
// Fixed chunks smaller than fixedBlock (the warm page file's 32 KiB) are
// the exception: one read system call per chunk cost a first backup more
// system time than copying, so such a Chunker reads the stream in blocks
// of fixedBlock into a buffer of its own and copies each chunk out of it.
//
// With content-defined parameters no cut can fall in a chunk's first Min
// bytes, so a stream shorter than Min is one chunk whatever its content: the
// Chunker reads the first Min bytes straight into the caller's buffer and
// only starts restic's chunker when the stream goes on. A source tree's
// files are almost all that short; each then costs no chunker reset, table
// copy or second copy of its bytes (TestChunkerSmallStreamsMatchRabin).
type Chunker struct {
	c      *chunker.Chunker
	params Params
	pol    chunker.Pol
	off    int64
	// r is the stream; nil after Release. done records that the stream
	// ended or failed before restic's chunker was needed.
	r        io.Reader
	done     bool
	started  bool // restic's chunker c runs (content-defined params)
	released bool

	// blk holds what was read of the stream and not yet cut, blk[pos:],
	// for fixed chunks smaller than fixedBlock (nil until the first Next);
	// rerr is the error (io.EOF at the end) of the read that filled it,
	// returned once blk is used up.
	blk  *[]byte
	pos  int
	rerr error
}

// fixedBlock is how much a Chunker of small fixed chunks reads at once. The
// warm page file (32 KiB chunks) read one chunk per read took 4 times the
// system CPU of the same bytes read in 1 MiB blocks (0.82 vs 0.21 s for
// a data dir's 577 MB of cold and warm files, page cache dropped); the
// copy out of the block costs a few hundredths of that.
const fixedBlock = 1 << 20

// rabinPool recycles restic chunkers: each owns a 512 KiB read buffer.
var rabinPool sync.Pool

// NewChunker returns a Chunker reading r, cutting with polynomial pol (the
// repository's, from its config) and params. Call Release when done to
// recycle its read buffer.
func NewChunker(r io.Reader, pol chunker.Pol, params Params) (*Chunker, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if pol == 0 || pol.Deg() > 53 || pol.Deg() < 9 {
		return nil, fmt.Errorf("chunker polynomial %v (degree %d): %w", pol, pol.Deg(), ErrInvalidParams)
	}
	return &Chunker{params: params, pol: pol, r: r}, nil
}

// Params returns the parameters the Chunker cuts with.
func (c *Chunker) Params() Params { return c.params }

// Offset returns the stream offset of the next chunk.
func (c *Chunker) Offset() int64 { return c.off }

// Next reads the next chunk into buf[:0] and returns it. buf must have a
// capacity of at least Params().Max, so the chunk never moves out of it (the
// pipeline relies on that to pool buffers); a smaller buf is an error. At the
// end of the stream Next returns io.EOF; a read error is returned wrapped with
// the offset of the chunk it interrupted.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.released {
		return nil, fmt.Errorf("chunker: used after Release: %w", ErrInvalidParams)
	}
	if uint(cap(buf)) < c.params.Max {
		return nil, fmt.Errorf("chunker: buffer capacity %d < Max %d: %w", cap(buf), c.params.Max, ErrInvalidParams)
	}
	if !c.started {
		if c.done {
			return nil, io.EOF
		}
		if c.params.Min == c.params.Max && c.params.Max < fixedBlock {
			return c.nextBlocked(buf)
		}
		// Up to Min bytes straight into buf: all of a fixed-size chunk, or
		// the start of the first content-defined one.
		n, err := io.ReadFull(c.r, buf[:c.params.Min])
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			c.done = true
			if n == 0 {
				return nil, io.EOF
			}
			c.off += int64(n)
			return buf[:n], nil
		default:
			c.done = true
			return nil, fmt.Errorf("read at offset %d: %w", c.off, err)
		}
		if c.params.Min == c.params.Max {
			c.off += int64(n)
			return buf[:n], nil
		}
		// The stream goes on: restic's chunker takes over, reading the n
		// bytes again from buf. It writes the first chunk into buf from
		// offset 0, only bytes it has already read, which are the bytes
		// already there: buf[i] is stream byte i before and after.
		c.start(io.MultiReader(bytes.NewReader(buf[:n]), c.r))
	}
	ch, err := c.c.Next(buf[:0])
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("read at offset %d: %w", c.off, err)
	}
	c.off += int64(ch.Length)
	return ch.Data, nil
}

// nextBlocked is Next for fixed chunks smaller than fixedBlock: the next
// Max bytes of the stream (fewer at its end), copied out of blocks read
// fixedBlock at a time. What it returns is what io.ReadFull of Max bytes
// would return: a read error is returned (wrapped with the chunk's offset)
// once the bytes read before it are cut, as ReadFull returns it.
func (c *Chunker) nextBlocked(buf []byte) ([]byte, error) {
	if c.blk == nil {
		c.blk = getBuf(fixedBlock)
		*c.blk = (*c.blk)[:0]
	}
	want := int(c.params.Max)
	n := 0
	for n < want {
		if c.pos == len(*c.blk) {
			if c.rerr != nil {
				break
			}
			b := (*c.blk)[:cap(*c.blk)]
			m, err := c.r.Read(b)
			*c.blk, c.pos = b[:m], 0
			if err != nil {
				c.rerr = err
			}
			continue
		}
		k := copy(buf[n:want], (*c.blk)[c.pos:])
		c.pos += k
		n += k
	}
	if n == want {
		c.off += int64(n)
		return buf[:n], nil
	}
	c.done = true
	if !errors.Is(c.rerr, io.EOF) {
		return nil, fmt.Errorf("read at offset %d: %w", c.off, c.rerr)
	}
	if n == 0 {
		return nil, io.EOF
	}
	c.off += int64(n)
	return buf[:n], nil
}

// start sets restic's chunker to cut r from the start with c's parameters.
func (c *Chunker) start(r io.Reader) {
	rc, _ := rabinPool.Get().(*chunker.Chunker)
	if rc == nil {
		rc = chunker.NewWithBoundaries(r, c.pol, c.params.Min, c.params.Max)
	} else {
		rc.ResetWithBoundaries(r, c.pol, c.params.Min, c.params.Max)
	}
	rc.SetAverageBits(c.params.AverageBits)
	c.c, c.started = rc, true
}

// Release returns the Chunker's read buffer for reuse. The Chunker must not
// be used afterwards.
func (c *Chunker) Release() {
	if c.released {
		return
	}
	c.released, c.r = true, nil
	if c.blk != nil {
		putBuf(c.blk)
		c.blk = nil
	}
	if c.c == nil {
		return
	}
	c.c.ResetWithBoundaries(nil, 0, c.params.Min, c.params.Max) // drop the reader
	rabinPool.Put(c.c)
	c.c = nil
}
