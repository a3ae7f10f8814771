package main

import (
	"math/rand/v2"
	"strings"
)

// A profile is a named shape of data dir: how generate splits each space
// between the tiers, what a record looks like, and what mutate's "day"
// writes. The benchmarks (scripts/bench.sh, BENCH_PROFILES) run every row
// on each profile so that memento is not only fast on the one mix it was
// tuned on. "default" is the historical mix and must keep producing the same
// bytes for the same seed (testdata/generate-4MiB-seed1.blake3).
type profile struct {
	name    string
	summary string // one line, for --help and the usage error
	// walPct and warmPct are the WAL's and the warm page file's shares of a
	// space's budget, in percent; cold segments get the rest after hot.
	walPct, warmPct int64
	// hotBytes is the size aimed at for the hot files of a space.
	hotBytes func(budget int64) int64
	// warmFree is the share of free (all-zero) pages in a generated page file.
	warmFree float64
	// text draws a record's content; textEst is its mean length in bytes,
	// used to estimate entry and row sizes.
	text    func(r *rand.Rand, sb *strings.Builder) string
	textEst int64
	// uniqueEmbeddings: no embedding appears twice in the dir. The hot
	// memtable and mutate's cold segment then carry embeddings drawn afresh
	// instead of copies of the WAL records' (which a real database would
	// have, and which deduplication across files could exploit).
	uniqueEmbeddings bool
}

var profiles = []*profile{
	{
		name:     "default",
		summary:  "WAL 45 %, warm pages 30 %, cold segments ~25 %, hot budget/500 (8 KiB..2 MiB); records of 40-200 bytes of text",
		walPct:   45,
		warmPct:  30,
		hotBytes: func(budget int64) int64 { return min(max(budget/500, 8<<10), 2<<20) },
		warmFree: warmFreeShare,
		text:     sentence,
		textEst:  110,
	},
	{
		name: "wal-heavy",
		summary: "WAL 50 % (768-dim records with ~200 bytes of text), warm pages 30 % (one record a page, none free), " +
			"cold segments 20 %, hot ~200 KiB; every embedding unique",
		walPct:           50,
		warmPct:          30,
		hotBytes:         func(budget int64) int64 { return min(200<<10, max(budget/20, 8<<10)) },
		warmFree:         0,
		text:             longText,
		textEst:          200,
		uniqueEmbeddings: true,
	},
}

// profileNames lists the valid --profile values.
func profileNames() []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.name
	}
	return names
}

// lookupProfile returns the named profile, or a usage error naming the
// valid ones.
func lookupProfile(name string) (*profile, error) {
	for _, p := range profiles {
		if p.name == name {
			return p, nil
		}
	}
	return nil, usageErrorf("--profile %q: unknown profile (valid: %s)", name, strings.Join(profileNames(), ", "))
}

// profileHelp documents the profiles for --help.
func profileHelp() string {
	var b strings.Builder
	for _, p := range profiles {
		b.WriteString("  ")
		b.WriteString(p.name)
		b.WriteString(": ")
		b.WriteString(p.summary)
		b.WriteByte('\n')
	}
	return b.String()
}

// longText returns about 200 bytes of text (sentences until at least 180
// bytes, cut at 220 without splitting a rune).
func longText(r *rand.Rand, sb *strings.Builder) string {
	out := make([]byte, 0, 256)
	for len(out) < 180 {
		if len(out) > 0 {
			out = append(out, ' ')
		}
		out = append(out, sentence(r, sb)...)
	}
	return truncateUTF8(string(out), 220)
}

// freshEmbeddings redraws the embeddings of recs in place from r (for
// profiles with unique embeddings).
func freshEmbeddings(recs []coldRecord, r *rand.Rand) {
	for i := range recs {
		fillNormal(r, recs[i].rec.Embedding)
	}
}
