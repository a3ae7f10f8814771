//go:build study

package chunk

// warmHuffLits is compressKind as it stored warm page file chunks before
// issue 18's session 14: form 0x04 with the rest section's literals
// Huffman-coded (rawRestLits false). Chunks whose form 0x04 needs the
// fallback comparison (off the page grid, non-random mantissas) are left
// to compressKind; none of the bench's data sets has one.
func warmHuffLits(dst, src []byte, l Level, k fileKind) ([]byte, bool) {
	if k == kindWarm {
		runs, words, offGrid := warmRuns(make([]walRun, 0, 16), src)
		if words >= warmMinWords && !repeatedRun(src, runs) {
			ent := runEntropy(src, runs, warmSampleWords, warmMinSample)
			if !offGrid && ent[0] >= randomPlaneEntropy && ent[1] >= randomPlaneEntropy {
				if out, ok := compressRuns(dst, src, runs, words, ent, l, false, nil); ok {
					return out, true
				}
			}
		}
	}
	return compressKind(dst, src, l, k, formsHuff|formsWALRecords, nil)
}
