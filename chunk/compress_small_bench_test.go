package chunk

import (
	"fmt"
	"testing"
)

// BenchmarkCompressSmall measures Compress (auto mode, default level) on
// chunk sizes of the warm page file candidates.
//
//	go test -run '^$' -bench CompressSmall ./chunk/
func BenchmarkCompressSmall(b *testing.B) {
	for _, kind := range dataKinds[:3] {
		src := kind.gen(4<<20, 42)
		for _, size := range []int{8 << 10, 16 << 10, 32 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%dK", kind.name, size>>10), func(b *testing.B) {
				dst := make([]byte, 0, size+1024)
				b.SetBytes(int64(size))
				var in, out int
				i := 0
				for b.Loop() {
					chunk := src[i*size : (i+1)*size]
					i = (i + 1) % (len(src) / size)
					s, _ := Compress(dst, chunk, LevelDefault)
					in += size
					out += len(s)
				}
				b.ReportMetric(float64(in)/float64(out), "ratio")
			})
		}
	}
}
