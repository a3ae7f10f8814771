//go:build study

package chunk

import (
	"encoding/binary"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

var noEntEnc = func() *zstd.Encoder {
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true),
		zstd.WithLowerEncoderMem(false),
		zstd.WithNoEntropyCompression(true),
	)
	if err != nil {
		panic(err)
	}
	return e
}()

// shuffleW3 writes formatShuffle4Huff with zstd planes: planes whose exact
// entropy is at least noEnt bits go through an encoder without literal
// entropy coding.
func shuffleW3(dst, src []byte, l Level, noEnt float64) []byte {
	q := len(src) / 4
	sh := make([]byte, len(src))
	var p [4][]byte
	rest := sh
	for k := range 4 {
		n := q
		if k == 3 {
			n = len(src) - 3*q
		}
		p[k], rest = rest[:n:n], rest[n:]
	}
	shufflePlanes(p, src)
	dst = append(dst, formatShuffle4Huff)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	for k := range 4 {
		var h [256]uint32
		for _, c := range p[k] {
			h[c]++
		}
		e := entropy(&h, float64(len(p[k])))
		var enc interface{ EncodeAll(src, dst []byte) []byte } = encoder(l)
		if e >= noEnt {
			enc = noEntEnc
		}
		hdr := len(dst)
		dst = append(dst, planeZstd, 0, 0, 0, 0, 0)
		dst = enc.EncodeAll(p[k], dst)
		n := len(dst) - hdr - 6
		if !pays(len(p[k]), n) {
			dst = appendSection(dst[:hdr], planeRaw, p[k])
			continue
		}
		putUvarint5(dst[hdr+1:hdr+6], uint64(n))
	}
	return dst
}
