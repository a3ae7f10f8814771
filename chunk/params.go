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

// The parameters, chosen by measurement (docs/chunking.md,
// BenchmarkWarmRewrite). Each is part of a repository's dedup behaviour:
// changing one does not break old snapshots, but the next backup of every
// such file would store it anew. That is why they come in numbered sets
// ([ParamSet]) and a repository keeps the set it was created with.
var (
	// ParamsWAL: WAL segments only grow at the end, so the chunks of what a
	// backup has seen stay identical however the file is cut, as long as
	// the cuts do not depend on what comes after them: fixed 1 MiB chunks.
	// Content-defined boundaries (sets 1 and 2) buy nothing on append-only
	// data (the WAL table in docs/chunking.md: every candidate stores the
	// same share after an append) and their rolling hash was the largest
	// cost of chunking a first backup: fixed chunks took 0.45 CPU s (12 %
	// of the wall time) off the 1 GiB bench set. A backup of the open
	// segment re-stores only its last, partial, chunk: at most 1 MiB, where
	// set 2's could be up to 4 MiB.
	ParamsWAL = Params{Min: 1 << 20, Max: 1 << 20, AverageBits: 20}
	// ParamsCold: cold segments never change once written, but a segment
	// written by merging older ones holds their bytes at new offsets, which
	// content-defined boundaries find again. Min is two thirds of the
	// average (~3 MiB): the Rabin chunker skips the first Min bytes of every
	// chunk without rolling its hash, so a high Min halves its CPU at the
	// same average chunk size.
	ParamsCold = Params{Min: 2 << 20, Max: 8 << 20, AverageBits: 20}
	// ParamsWarm: the warm page file is rewritten in place in 4 KiB pages and
	// never shifts, so fixed 32 KiB chunks (8 pages) change exactly the
	// blocks that hold a rewritten page; content-defined chunks of the same
	// count re-store about twice as much (the table in docs/chunking.md).
	// Sets 1 and 2 used 16 KiB: half the re-stored share after 1 % of the
	// pages are rewritten (4 % of the file instead of 8 %), but every chunk
	// pays a fixed cost (a zstd frame with its own Huffman table, a sealed
	// blob, an index entry) that made the warm file cost 0.5 CPU seconds
	// more per 320 MB to back up, and that a mount or restore pays again.
	ParamsWarm = Params{Min: 32 << 10, Max: 32 << 10, AverageBits: 15}
	// ParamsDefault: everything else (hot files, metadata, any tree given to
	// `memento backup PATH`), the restic-like general-purpose choice.
	ParamsDefault = Params{Min: 512 << 10, Max: 8 << 20, AverageBits: 20}

	// Set 1's WAL and cold parameters (its default is the same).
	paramsWALSet1  = Params{Min: 512 << 10, Max: 4 << 20, AverageBits: 20}
	paramsColdSet1 = Params{Min: 1 << 20, Max: 8 << 20, AverageBits: 21}
	// Set 2's WAL parameters: Min two thirds of the average (~1.5 MiB).
	paramsWALSet2 = Params{Min: 1 << 20, Max: 4 << 20, AverageBits: 19}
	// Sets 1 and 2's warm parameters.
	paramsWarmSet12 = Params{Min: 16 << 10, Max: 16 << 10, AverageBits: 14}
)

// ParamSet numbers one generation of the per-kind parameters. A repository
// records its set in its config, so that upgrading memento never moves the
// chunk boundaries of an existing repository (which would store all its WAL
// and cold data once more); new repositories get [CurrentParamSet].
type ParamSet int

const (
	// ParamSet1: memento's first parameters (WAL 512 KiB-4 MiB, 20 bits;
	// cold 1-8 MiB, 21 bits; warm fixed 16 KiB). Repositories whose config
	// names no set use it.
	ParamSet1 ParamSet = 1
	// ParamSet2: WAL 1-4 MiB, 19 bits; cold 2-8 MiB, 20 bits: the same
	// average chunk sizes with half the rolling-hash work (warm as set 1).
	ParamSet2 ParamSet = 2
	// ParamSet3: fixed-size WAL chunks (1 MiB) and warm chunks (32 KiB
	// instead of 16 KiB); cold and default as in set 2.
	ParamSet3 ParamSet = 3
	// CurrentParamSet is the set `memento init` records.
	CurrentParamSet = ParamSet3
)

// Validate reports whether this binary knows the set.
func (s ParamSet) Validate() error {
	if s < ParamSet1 || s > CurrentParamSet {
		return fmt.Errorf("chunk parameter set %d (this binary knows 1..%d): %w", s, CurrentParamSet, ErrInvalidParams)
	}
	return nil
}

// For returns the set's parameters for a file, by its slash-separated path
// relative to the space (or backup) root, as [ParamsFor] does for the
// current set. An unknown set gets the current set's parameters; callers
// validate the set when they read it from a repository.
func (s ParamSet) For(relPath string) Params {
	k := kindOf(relPath)
	switch {
	case s == ParamSet1 && k == kindWAL:
		return paramsWALSet1
	case s == ParamSet1 && k == kindCold:
		return paramsColdSet1
	case s == ParamSet2 && k == kindWAL:
		return paramsWALSet2
	case (s == ParamSet1 || s == ParamSet2) && k == kindWarm:
		return paramsWarmSet12
	}
	return currentParams[k]
}

// fileKind is what the parameters depend on: which kind of Engram file.
type fileKind int

const (
	kindDefault fileKind = iota
	kindWAL
	kindCold
	kindWarm
)

var currentParams = [...]Params{kindDefault: ParamsDefault, kindWAL: ParamsWAL, kindCold: ParamsCold, kindWarm: ParamsWarm}

// ParamsFor returns the current set's chunk parameters for a file, by its
// slash-separated path relative to the space (or backup) root: WAL segments
// (wal/*.log), cold segments (cold/*.col), the warm page file
// (warm/warm_tier.dat), and a default for everything else. Only the last two
// path elements count, so "spaces/x/wal/wal-01.log" and "wal/wal-01.log" get
// the same parameters.
func ParamsFor(relPath string) Params {
	return CurrentParamSet.For(relPath)
}

func kindOf(relPath string) fileKind {
	p := path.Clean(strings.ReplaceAll(relPath, "\\", "/"))
	dir, file := path.Split(p)
	dir = path.Base(strings.TrimSuffix(dir, "/"))
	switch {
	case dir == "wal" && strings.HasSuffix(file, ".log"):
		return kindWAL
	case dir == "cold" && strings.HasSuffix(file, ".col"):
		return kindCold
	case dir == "warm" && file == "warm_tier.dat":
		return kindWarm
	}
	return kindDefault
}
