package chunk

import (
	"encoding/hex"
	"testing"

	"github.com/zeebo/blake3"
)

// TestEncoderFramesGolden pins the zstd frames the encoders write, per
// setting, for generated text (one block and several), floats and binary
// data: the digests were computed with the encoders of main c28fbbc (one
// zstd.Encoder of concurrency GOMAXPROCS per setting), so a change in how
// encoders are made or handed out that changes a stored byte fails here.
func TestEncoderFramesGolden(t *testing.T) {
	inputs := [][]byte{genText(40<<10, 1), genText(300<<10, 2), genFloats(64<<10, 3), genBinary(20 << 10), genText(3<<10, 5)}
	for _, c := range []struct {
		name string
		enc  interface{ EncodeAll(src, dst []byte) []byte }
		want string
	}{
		{"fastest", encoder(LevelFastest), "010c10bf23da621e70aee3a693f0491fbdbfa8d38acca864de209ca0fdd7f831"},
		{"balanced", encoder(LevelBalanced), "fc6666919ef25ee82d529749c4640854f19e7c6fab84a9f3767aa11f17091cf7"},
		{"better", encoder(LevelBetter), "61d1388e4ddaa54ba20b7e1092e76a4a075f45936b2e2586eff9b6589d5d30e7"},
		{"fastest raw literals", rawLitEncoder(LevelFastest), "19ad1d148777fa19252c9f88a6341eaece1d3b288a3d52701879182930bff475"},
	} {
		h := blake3.New()
		for _, in := range inputs {
			_, _ = h.Write(c.enc.EncodeAll(in, nil))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != c.want {
			t.Errorf("%s: frames digest %s, want %s", c.name, got, c.want)
		}
	}
}
