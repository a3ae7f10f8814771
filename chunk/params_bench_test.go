package chunk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

// chunkSet cuts data and returns each chunk's hash and length.
func chunkSet(b *testing.B, data []byte, p Params) map[[32]byte]int {
	c, err := NewChunker(bytes.NewReader(data), testPol, p)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	buf := make([]byte, p.Max)
	set := map[[32]byte]int{}
	for {
		ch, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			return set
		}
		if err != nil {
			b.Fatal(err)
		}
		set[blake3.Sum256(ch)] = len(ch)
	}
}

// newShare reports the bytes of after's chunks that before lacks, as a
// percentage of len(afterData), the chunk count and mean chunk size.
func newShare(b *testing.B, before, afterData []byte, p Params) (pct float64, chunks int, meanKiB float64) {
	old := chunkSet(b, before, p)
	cur := chunkSet(b, afterData, p)
	var added int
	for h, n := range cur {
		if _, ok := old[h]; !ok {
			added += n
		}
	}
	return 100 * float64(added) / float64(len(afterData)), len(cur), float64(len(afterData)) / float64(len(cur)) / 1024
}

var warmCandidates = []struct {
	name string
	p    Params
}{
	{"fixed-4K", Params{Min: 4 << 10, Max: 4 << 10, AverageBits: 12}},
	{"fixed-8K", Params{Min: 8 << 10, Max: 8 << 10, AverageBits: 13}},
	{"fixed-16K", Params{Min: 16 << 10, Max: 16 << 10, AverageBits: 14}},
	{"fixed-32K", Params{Min: 32 << 10, Max: 32 << 10, AverageBits: 15}},
	{"fixed-64K", Params{Min: 64 << 10, Max: 64 << 10, AverageBits: 16}},
	{"cdc-b12-2K-64K", Params{Min: 2 << 10, Max: 64 << 10, AverageBits: 12}},
	{"cdc-b13-4K-64K", Params{Min: 4 << 10, Max: 64 << 10, AverageBits: 13}},
	{"cdc-b14-4K-128K", Params{Min: 4 << 10, Max: 128 << 10, AverageBits: 14}},
	{"cdc-b14-8K-128K", Params{Min: 8 << 10, Max: 128 << 10, AverageBits: 14}},
	{"cdc-b15-8K-256K", Params{Min: 8 << 10, Max: 256 << 10, AverageBits: 15}},
	{"cdc-b16-16K-256K", Params{Min: 16 << 10, Max: 256 << 10, AverageBits: 16}},
	{"cdc-b20-512K-8M", ParamsDefault},
}

// BenchmarkWarmRewrite measures, per parameter candidate, the share of a
// 256 MiB warm page file (4 KiB pages of float32-normal values) that a backup
// must store anew after 1 % of its pages were rewritten in place at random:
// new-% is that share, chunks the chunk count, KiB the mean chunk size.
//
//	go test -run '^$' -bench WarmRewrite -benchtime 1x ./chunk/
func BenchmarkWarmRewrite(b *testing.B) {
	const size, page = 256 << 20, 4 << 10
	before := genFloats(size, 11)
	after := bytes.Clone(before)
	r := rand.New(rand.NewPCG(12, 12))
	pages := size / page
	for _, pg := range r.Perm(pages)[:pages/100] {
		copy(after[pg*page:], genFloats(page, uint64(pg)))
	}
	for _, c := range warmCandidates {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(2 * size)
			var pct, mean float64
			var chunks int
			for b.Loop() {
				pct, chunks, mean = newShare(b, before, after, c.p)
			}
			b.ReportMetric(pct, "new-%")
			b.ReportMetric(float64(chunks), "chunks")
			b.ReportMetric(mean, "KiB")
		})
	}
}

// BenchmarkWALAppend measures the share of a 64 MiB WAL segment stored anew
// after 2 % was appended to it (the open segment between two backups): the
// appended bytes plus the re-cut last chunk.
//
//	go test -run '^$' -bench WALAppend -benchtime 1x ./chunk/
func BenchmarkWALAppend(b *testing.B) {
	const size = 64 << 20
	full := genWAL(size+size/50, 13)
	before, after := full[:size], full
	for _, p := range []Params{
		{Min: 256 << 10, Max: 2 << 20, AverageBits: 19},
		paramsWALSet2,
		ParamsWAL, // fixed 1 MiB
		{Min: 4 << 20, Max: 4 << 20, AverageBits: 22},
		{Min: 1 << 20, Max: 8 << 20, AverageBits: 21},
		{Min: 2 << 20, Max: 8 << 20, AverageBits: 22},
	} {
		b.Run(fmt.Sprintf("b%d-%dK-%dK", p.AverageBits, p.Min>>10, p.Max>>10), func(b *testing.B) {
			b.SetBytes(2 * size)
			var pct, mean float64
			var chunks int
			for b.Loop() {
				pct, chunks, mean = newShare(b, before, after, p)
			}
			b.ReportMetric(pct, "new-%")
			b.ReportMetric(float64(chunks), "chunks")
			b.ReportMetric(mean, "KiB")
		})
	}
}
