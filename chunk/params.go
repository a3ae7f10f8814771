package chunk

import (
	"fmt"
	"path"
	"strings"
)

// MaxChunkSize is the largest chunk any Params may produce and the largest
// plaintext Decompress accepts. It is part of the repository format: readers
// size their buffers by it.
const MaxChunkSize = 8 << 20

// minChunkSize is the smallest Min the Rabin chunker supports (its window).
const minChunkSize = 64

// Params are the chunk-size parameters of the content-defined chunker: no
// chunk is shorter than Min (except a stream's last) or longer than Max, and
// a boundary is cut where the low AverageBits bits of the rolling hash are
// zero, i.e. on average every 2^AverageBits bytes after Min. Min == Max gives
// fixed-size chunks (AverageBits is then irrelevant), the right choice for
// files rewritten in place in fixed pages.
type Params struct {
	Min, Max    uint
	AverageBits int
}

// Validate reports whether the chunker can use p.
func (p Params) Validate() error {
	switch {
	case p.Min < minChunkSize:
		return fmt.Errorf("params %+v: Min below %d: %w", p, minChunkSize, ErrInvalidParams)
	case p.Max < p.Min:
		return fmt.Errorf("params %+v: Max below Min: %w", p, ErrInvalidParams)
	case p.Max > MaxChunkSize:
		return fmt.Errorf("params %+v: Max above %d: %w", p, MaxChunkSize, ErrInvalidParams)
	case p.AverageBits < 1 || p.AverageBits > 30:
		return fmt.Errorf("params %+v: AverageBits outside 1..30: %w", p, ErrInvalidParams)
	}
	return nil
}

// The parameter sets, chosen by measurement (docs/chunking.md,
// BenchmarkWarmRewrite). Each is part of the repository's dedup behaviour:
// changing one does not break old snapshots, but the next backup of every
// such file stores it anew.
var (
	// ParamsWAL: WAL segments only grow at the end, so all chunks but the
	// last stay identical between backups however large they are; large
	// chunks mean few IDs, small trees and efficient compression. A backup
	// of the open segment re-stores only its last (partial) chunk.
	ParamsWAL = Params{Min: 512 << 10, Max: 4 << 20, AverageBits: 20}
	// ParamsCold: cold segments never change once written.
	ParamsCold = Params{Min: 1 << 20, Max: 8 << 20, AverageBits: 21}
	// ParamsWarm: the warm page file is rewritten in place in 4 KiB pages and
	// never shifts, so fixed 16 KiB chunks (4 pages) change exactly the
	// blocks that hold a rewritten page; content-defined chunks of the same
	// count re-store about twice as much (the table in docs/chunking.md).
	ParamsWarm = Params{Min: 16 << 10, Max: 16 << 10, AverageBits: 14}
	// ParamsDefault: everything else (hot files, metadata, any tree given to
	// `memento backup PATH`), the restic-like general-purpose choice.
	ParamsDefault = Params{Min: 512 << 10, Max: 8 << 20, AverageBits: 20}
)

// ParamsFor returns the chunk parameters for a file, by its slash-separated
// path relative to the space (or backup) root: WAL segments (wal/*.log),
// cold segments (cold/*.col), the warm page file (warm/warm_tier.dat), and a
// default for everything else. Only the last two path elements count, so
// "spaces/x/wal/wal-01.log" and "wal/wal-01.log" get the same parameters.
func ParamsFor(relPath string) Params {
	p := path.Clean(strings.ReplaceAll(relPath, "\\", "/"))
	dir, file := path.Split(p)
	dir = path.Base(strings.TrimSuffix(dir, "/"))
	switch {
	case dir == "wal" && strings.HasSuffix(file, ".log"):
		return ParamsWAL
	case dir == "cold" && strings.HasSuffix(file, ".col"):
		return ParamsCold
	case dir == "warm" && file == "warm_tier.dat":
		return ParamsWarm
	}
	return ParamsDefault
}
