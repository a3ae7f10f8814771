package chunk

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Level selects how hard Compress tries. The zero value is LevelDefault.
type Level int8

const (
	// LevelNone stores every chunk uncompressed.
	LevelNone Level = -1
	// LevelDefault is the level chosen by benchmark (see docs/chunking.md);
	// it resolves to DefaultLevel.
	LevelDefault Level = 0
	// LevelFastest is zstd SpeedFastest (about zstd -1).
	LevelFastest Level = 1
	// LevelBalanced is zstd SpeedDefault (about zstd -3).
	LevelBalanced Level = 2
	// LevelBetter is zstd SpeedBetterCompression (about zstd -7).
	LevelBetter Level = 3
	// LevelBest is zstd SpeedBestCompression (about zstd -11); slow.
	LevelBest Level = 4
)

// DefaultLevel is what LevelDefault means. Chosen by BenchmarkCompress: on
// this project's data SpeedFastest is several times faster than SpeedDefault
// for a ratio within a few percent (docs/chunking.md has the figures).
const DefaultLevel = LevelFastest

var levelNames = map[Level]string{
	LevelNone:     "none",
	LevelDefault:  "default",
	LevelFastest:  "fastest",
	LevelBalanced: "balanced",
	LevelBetter:   "better",
	LevelBest:     "best",
}

// String returns the level's name as accepted by ParseLevel.
func (l Level) String() string {
	if s, ok := levelNames[l]; ok {
		return s
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses a level name (none, default, fastest, balanced, better, best).
func ParseLevel(s string) (Level, error) {
	for l, name := range levelNames {
		if strings.EqualFold(s, name) {
			return l, nil
		}
	}
	return LevelDefault, fmt.Errorf("compression level %q: want none, default, fastest, balanced, better or best: %w", s, ErrInvalidParams)
}

// resolve maps LevelDefault to DefaultLevel and rejects unknown levels.
func (l Level) resolve() (Level, error) {
	if l == LevelDefault {
		return DefaultLevel, nil
	}
	if _, ok := levelNames[l]; !ok {
		return 0, fmt.Errorf("compression level %d: %w", int(l), ErrInvalidParams)
	}
	return l, nil
}

func (l Level) zstd() zstd.EncoderLevel {
	switch l {
	case LevelBalanced:
		return zstd.SpeedDefault
	case LevelBetter:
		return zstd.SpeedBetterCompression
	case LevelBest:
		return zstd.SpeedBestCompression
	default:
		return zstd.SpeedFastest
	}
}
