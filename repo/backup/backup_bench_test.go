package backup_test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backup"
	"memento/repo/backup/backuptest"
	"memento/repo/repotest"
)

// benchDataSize is the size of the generated tree the benchmarks back up.
const benchDataSize = 256 << 20

// writeBenchTree writes about benchDataSize bytes of mixed data under dir: a
// third incompressible, a third float32 vectors (like Engram embeddings, which
// compress a little), a sixth text, and a sixth in many small files, plus a
// sparse file. It returns the number of bytes written.
func writeBenchTree(b *testing.B, dir string) int64 {
	b.Helper()
	var total int64
	put := func(rel string, data []byte) {
		repotest.WriteFile(b, filepath.Join(dir, rel), data, 0o644)
		total += int64(len(data))
	}
	third, sixth := benchDataSize/3, benchDataSize/6
	for i := range 4 {
		put("random/r"+strconv.Itoa(i)+".bin", repotest.RandomBytes(uint64(i+1), third/4))
	}
	vec := make([]byte, third)
	seed := repotest.RandomBytes(99, 4*768)
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
	small := repotest.RandomBytes(7, sixth)
	for i := 0; i < 2000; i++ {
		n := sixth / 2000
		put("small/"+strconv.Itoa(i/100)+"/f"+strconv.Itoa(i), small[i*n:(i+1)*n])
	}
	f, err := os.Create(filepath.Join(dir, "sparse.dat"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteAt(repotest.RandomBytes(5, 1<<20), 32<<20); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return total + 33<<20
}

// BenchmarkBackup measures a first backup into a new repository (MB/s of
// source data), and a second backup of the unchanged tree (change detection).
//
//	go test ./repo/backup ./repo/restore -run '^$' -bench 'Backup|Restore' -benchtime 3x
func BenchmarkBackup(b *testing.B) {
	src := filepath.Join(b.TempDir(), "src")
	size := writeBenchTree(b, src)
	b.Run("first", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			b.StopTimer()
			tr := repotest.New(b, repo.InitOptions{})
			b.StartTimer()
			backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			b.StopTimer()
			os.RemoveAll(tr.Dir)
			b.StartTimer()
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		tr := repotest.New(b, repo.InitOptions{})
		backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
		b.SetBytes(size)
		for b.Loop() {
			sn := backuptest.Backup(b, tr.Repository, backup.BackupOptions{Paths: []string{src}})
			if sn.Summary.NewBytes != 0 {
				b.Fatalf("unchanged backup stored %d bytes", sn.Summary.NewBytes)
			}
		}
	})
}
