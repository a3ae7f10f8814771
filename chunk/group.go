package chunk

// Grouped small files (repository format 6, docs/repository-format.md
// "Grouped small files"): a backup concatenates small files into a group
// blob, compressed once, and stores each file's chunk as a member naming its
// slice of the group. These are the chunk package's parts of the write side.

// groupLevel is the level a group is compressed at when the pipeline's is
// the default (LevelFastest): LevelBalanced, the level a text file of the
// default kind gets alone (FileLevel, textLevel). A group at it costs less
// CPU than its files compressed one by one at it, and is smaller than a
// group at the fastest level by what keeps the repository of a source tree
// within restic's (Go's src/: 38.2 MB against 39.7 and restic's 38.9;
// docs/benchmarks.md, "Issue 18, session 20: grouped small files, the
// backup side").
const groupLevel = LevelBalanced

// CompressGroup appends to dst[:0] the stored form of a group blob's
// plaintext src and reports whether it is compressed: one zstd frame (form
// 0x01) at groupLevel, or at the pipeline's level when that is not the
// default (no float shuffling, no text rule); src itself when it does not pay (a group of compressed files:
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
