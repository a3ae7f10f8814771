package chunk

// Grouped small files (repository format 6, docs/repository-format.md
// "Grouped small files"): a backup concatenates small files into a group
// blob, compressed once, and stores each file's chunk as a member naming its
// slice of the group. These are the chunk package's parts of the write side.

// groupLevel is the level a group is compressed at when the pipeline's is
// LevelFastest (the default): plain zstd SpeedFastest, without the text rule
// that compresses a text chunk of its own at LevelBalanced (textLevel). On a
// 1 MiB group the fastest level already finds what the default level finds
// in each file alone, at a fraction of the CPU (docs/benchmarks.md, "Issue
// 18, session 20: grouped small files, the backup side").
const groupLevel = LevelFastest

// CompressGroup appends to dst[:0] the stored form of a group blob's
// plaintext src and reports whether it is compressed: one zstd frame (form
// 0x01) at groupLevel, or at the pipeline's level when that is not the
// default; src itself when it does not pay (a group of compressed files:
// its probe samples save nothing) or the pipeline stores raw.
func (p *Pipeline) CompressGroup(dst, src []byte) (stored []byte, compressed bool) {
	l, err := p.level.resolve()
	if err != nil || l == LevelNone || len(src) < minCompressSize {
		return src, false
	}
	if l == DefaultLevel {
		l = groupLevel
	}
	if probed(src) && !samplePays(src, l) {
		return src, false
	}
	out := append(dst[:0], formatZstd)
	out = encoder(l).EncodeAll(src, out)
	if !pays(len(src), len(out)) {
		return src, false
	}
	return out, true
}
