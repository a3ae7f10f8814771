package chunk

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"testing"
)

// TestCompressFastestSkipsTheTextRule: CompressFastest stores JSON text as
// one zstd frame at the fastest level (Compress would raise text to
// LevelBalanced), which decompresses to the input; an input too short to
// compress is returned as it is.
func TestCompressFastestSkipsTheTextRule(t *testing.T) {
	var src []byte
	src = append(src, `{"version":1,"packs":[`...)
	for i := range 3000 {
		id := fmt.Appendf(nil, "blob %d", i)
		src = fmt.Appendf(src, `{"id":"%s","t":1,"f":1,"o":%d,"l":%d,"r":%d},`, hex.EncodeToString(append(id, make([]byte, 32-len(id))...)), i*1000, 900+i%77, 3000+i%91)
	}
	src = append(src, "]}"...)
	got, ok := CompressFastest(nil, src)
	if !ok || got[0] != formatZstd {
		t.Fatalf("CompressFastest: compressed %v, form %#x", ok, got[0])
	}
	want := encoder(LevelFastest).EncodeAll(src, []byte{formatZstd})
	if !bytes.Equal(got, want) {
		t.Errorf("CompressFastest: %d bytes, not the %d of one frame at the fastest level", len(got), len(want))
	}
	if text, _ := Compress(nil, src, LevelFastest); bytes.Equal(text, got) {
		t.Error("Compress of the same text wrote the same bytes: the text rule no longer applies, or CompressFastest follows it")
	}
	back, err := Decompress(nil, got)
	if err != nil || !bytes.Equal(back, src) {
		t.Fatalf("Decompress: %v, equal %v", err, bytes.Equal(back, src))
	}
	short := []byte(`{"v":1}`)
	if out, ok := CompressFastest(nil, short); ok || !bytes.Equal(out, short) {
		t.Errorf("CompressFastest of %d bytes: compressed %v", len(short), ok)
	}
}
