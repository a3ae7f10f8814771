package chunk

import (
	"fmt"
	"math"
)

// SplitSmall is SplitFile for a whole file already in memory and shorter
// than params.Min: no content-defined cut can fall in a stream's first Min
// bytes, so such a file is one chunk (none when empty), the chunk SplitFile
// would cut. It returns what SplitFile returns for that stream (the chunk
// IDs, the plain BLAKE3-256 of data, and stores the same stored form at the
// same level and with the same strategy), but does the work on the calling
// goroutine: it hashes the chunk with key, skips it when known(id) reports
// it, and otherwise compresses it and calls store, before returning. It
// takes no share of the pipeline's buffer budget and no worker: the caller
// holds data and bounds how many SplitSmalls run at once.
//
// A backup of a source tree is thousands of such files. Through Split each
// was read on its own goroutine, handed to a worker and waited for, so a
// file's read and its compression never overlapped and the reads of a cold
// page cache, each a disk wait, left the cores idle; read whole by the
// caller (many at once) and compressed here, the reads overlap each other
// and the compression of the files read before. The zstd encoders let one
// compression per core run at once (encoder), whatever the number of
// callers.
//
// data must be shorter than params.Min (ErrInvalidParams otherwise); it is
// Chunk.Raw during store. scratch, if not nil, is the caller's buffer for
// the compressed form (Chunk.Stored during store): SplitSmall grows it as
// needed and leaves it in *scratch for the next call, so a caller that
// reads many files keeps one; nil takes a pooled one. SplitSmall after
// Close returns ErrClosed.
func (p *Pipeline) SplitSmall(data []byte, scratch *[]byte, relPath string, params Params, key Key,
	known func(ID) bool, store func(*Chunk) error) (ids []ID, sum [32]byte, err error) {
	return p.SplitSmallGrouped(data, scratch, relPath, params, key, known, nil, store)
}

// SplitSmallGrouped is SplitSmall for a repository that groups small files
// (format 6): a chunk the repository lacks (known says no) of a Groupable
// file is offered to group, which takes its bytes (copying them: data is
// the caller's) into a group blob and reports true, before any compression;
// when group reports false the chunk is compressed and stored as
// SplitSmall does. A nil group is SplitSmall.
//
// A file of at most smallRandomMax bytes whose bytes look random
// (looksRandomSmall) is not offered to group: it is stored alone and raw.
// In a group it would compress no better than alone (but for a near copy
// of it in the same group, rare at this size), and its member frame
// (37 bytes: version, the group's ID, offset and length) would make it
// cost more than its own bytes stored whole: 22,707 of u-tiny's 100,000
// files are random bytes of 64-200 bytes, 0.84 MB of frames
// (docs/benchmarks.md, "Issue 18, session 27: the repository of 100,000
// tiny files").
// Which files are grouped is the writer's choice: readers see members and
// whole blobs alike.
func (p *Pipeline) SplitSmallGrouped(data []byte, scratch *[]byte, relPath string, params Params, key Key,
	known func(ID) bool, group func(id ID, data []byte) (bool, error), store func(*Chunk) error) (ids []ID, sum [32]byte, err error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, sum, ErrClosed
	}
	if err := params.Validate(); err != nil {
		return nil, sum, fmt.Errorf("split: %w", err)
	}
	if uint(len(data)) >= params.Min {
		return nil, sum, fmt.Errorf("split: %d bytes in memory, not below Min %d: %w", len(data), params.Min, ErrInvalidParams)
	}
	sum = Sum256(data)
	if len(data) == 0 {
		return nil, sum, nil
	}
	level, kind := p.strategy(relPath)
	id := key.Sum(data)
	if known != nil && known(id) {
		return []ID{id}, sum, nil
	}
	random := false
	if group != nil && kind == kindDefault {
		random = looksRandomSmall(data)
	}
	if group != nil && kind == kindDefault && !random {
		taken, err := group(id, data)
		if err != nil {
			return nil, sum, fmt.Errorf("store chunk 0 (%s) at offset 0: %w", id.Short(), err)
		}
		if taken {
			return []ID{id}, sum, nil
		}
	}
	out := scratch
	if out == nil {
		out = getBuf(len(data))
		defer putBuf(out)
	}
	stored, compressed := data, false
	if !random {
		stored, compressed = compressKind((*out)[:0], data, level, kind, p.forms(), nil) // small: the pools, not the Pipeline's free list of big buffers
	}
	if compressed {
		*out = stored[:0]
	}
	err = store(&Chunk{ID: id, Raw: data, Stored: stored, Compressed: compressed})
	if err != nil {
		return nil, sum, fmt.Errorf("store chunk 0 (%s) at offset 0: %w", id.Short(), err)
	}
	return []ID{id}, sum, nil
}

// smallRandomMax is the largest file looksRandomSmall judges. Random-looking
// files a little larger are often near copies of each other (Go's
// compress/flate/testdata/huffman-rand-1k.*, botocore's endpoint rule sets
// .json.gz), whose group finds the matches between them: gosrc's 387
// such files of 64 B-1 KiB compress from 348 to 212 KB grouped, and their
// frames are 14 KB, so stored alone they would cost ~120 KB more. Up to 256 bytes the
// frame is at least a seventh of the file, and gosrc and pystd have 20 and
// 26 such files (4 KB; a KB either way).
const smallRandomMax = 256

// randomDistinct[n] is 4/5 of the expected count of distinct values among
// n uniformly random bytes, 256 * (1 - (255/256)^n), rounded up: a file
// with at least that many distinct bytes looks random. Random files reach
// it (at 64 bytes: 46 of 56.7 expected, 4.7 standard deviations below;
// at 256 bytes 130 of 162, 7 below); text would need 46 distinct
// characters in 64 bytes, 82 in 130, and past 170 bytes more than the
// 98 of printable ASCII, tab, CR and LF.
var randomDistinct = func() (t [smallRandomMax + 1]uint16) {
	for n := range t {
		t[n] = uint16(math.Ceil(0.8 * 256 * (1 - math.Pow(255.0/256, float64(n)))))
	}
	return t
}()

// looksRandomSmall reports whether p, of minCompressSize to smallRandomMax
// bytes, looks like random bytes: as many distinct byte values as
// randomDistinct asks. Such data does not compress alone, and in a group
// only where a near copy of it is there too.
func looksRandomSmall(p []byte) bool {
	if len(p) < minCompressSize || len(p) > smallRandomMax {
		return false
	}
	var seen [256]bool
	d := 0
	for _, c := range p {
		if !seen[c] {
			seen[c] = true
			d++
		}
	}
	return d >= int(randomDistinct[len(p)])
}
