package repotest

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchTreeSize is the size of the tree WriteBenchTree generates.
const BenchTreeSize = 256 << 20

// WriteBenchTree writes about BenchTreeSize bytes of mixed data under dir,
// the tree the backup and restore benchmarks share: a third
// incompressible, a third float32 vectors (like Engram embeddings, which
// compress a little), a sixth text, and a sixth in many small files, plus a
// sparse file. It returns the number of bytes written.
func WriteBenchTree(b testing.TB, dir string) int64 {
	b.Helper()
	var total int64
	put := func(rel string, data []byte) {
		WriteFile(b, filepath.Join(dir, rel), data, 0o644)
		total += int64(len(data))
	}
	third, sixth := BenchTreeSize/3, BenchTreeSize/6
	for i := range 4 {
		put("random/r"+strconv.Itoa(i)+".bin", RandomBytes(uint64(i+1), third/4))
	}
	vec := make([]byte, third)
	seed := RandomBytes(99, 4*768)
	for i := 0; i+4 <= len(vec); i += 4 {
		base := math.Float32frombits(binary.LittleEndian.Uint32(seed[i%len(seed):]) & 0x3fffffff)
		binary.LittleEndian.PutUint32(vec[i:], math.Float32bits(base*0.001+float32(i%768)))
	}
	put("cold/seg-1.col", vec)
	var sb strings.Builder
	for i := 0; sb.Len() < sixth; i++ {
		sb.WriteString(`{"seq":` + strconv.Itoa(i) + `,"op":"put","key":"k` + strconv.Itoa(i*7919%100003) + `","text":"the quick brown fox"}` + "\n")
	}
	put("hot/log.jsonl", []byte(sb.String()))
	small := RandomBytes(7, sixth)
	for i := 0; i < 2000; i++ {
		n := sixth / 2000
		put("small/"+strconv.Itoa(i/100)+"/f"+strconv.Itoa(i), small[i*n:(i+1)*n])
	}
	f, err := os.Create(filepath.Join(dir, "sparse.dat"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteAt(RandomBytes(5, 1<<20), 32<<20); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return total + 33<<20
}

// WriteSmallFileTree writes a source-code-like tree under dir for the
// small-file benchmarks: 4,000 text files of 200 bytes to 24 KiB in 400
// directories three levels deep (the Go toolchain's src/ averages 9 files
// of 11 KiB a directory). It returns the number of bytes written.
func WriteSmallFileTree(b testing.TB, dir string) int64 {
	b.Helper()
	var total int64
	line := []byte("\tif err := f(x); err != nil { return fmt.Errorf(\"step %d: %w\", i, err) } // 0123456789\n")
	for i := range 4000 {
		d := i / 10
		rel := filepath.Join("p"+strconv.Itoa(d/100), "q"+strconv.Itoa(d/10%10), "r"+strconv.Itoa(d%10), "f"+strconv.Itoa(i)+".go")
		n := 200 + int(RandomBytes(uint64(i), 8)[0])*96 // 200 B .. 24 KiB
		data := make([]byte, 0, n+len(line))
		data = append(data, "// file "+strconv.Itoa(i)+"\n"...)
		for len(data) < n {
			data = append(data, line...)
		}
		WriteFile(b, filepath.Join(dir, rel), data[:n], 0o644)
		total += int64(n)
	}
	return total
}
