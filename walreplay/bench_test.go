package walreplay

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// benchLog writes a 768-dim log of n entries (60 % stores, 30 % updates,
// 10 % deletes) into a temp dir, in 64 MiB segments.
func benchLog(b *testing.B, n int) (*Log, int64) {
	b.Helper()
	dir := b.TempDir()
	writeLog(b, dir, DefaultMaxSegmentSize, genEntries(42, n, 768))
	l, err := OpenLog(dir)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, s := range l.Segments() {
		size += s.Size
	}
	return l, size
}

// BenchmarkReplay replays a 768-dim log from disk (page cache) into a fresh
// State per iteration: reading, CRC, validation, payload checks, and either
// the copy of every record into the state ("copy") or a reference into the
// memory-mapped segment, read with read() ("zerocopy"). Reports entries/s and
// MB/s.
func BenchmarkReplay(b *testing.B) {
	const n = 50_000
	l, size := benchLog(b, n)
	ctx := context.Background()
	for _, mode := range []struct {
		name  string
		state func() *State
	}{{"copy", NewState}, {"zerocopy", NewZeroCopyState}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				s := mode.state()
				pos, err := l.Replay(ctx, Target{}, s)
				if err != nil || pos.Seq != n {
					b.Fatal(err, pos)
				}
				s.Close()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(n)*float64(b.N)/cpu.Seconds(), "entries/cpu-s")
			}
		})
	}
}

// BenchmarkSegmentReader measures decoding alone (header, CRC32C) from memory.
func BenchmarkSegmentReader(b *testing.B) {
	data := encode(genEntries(7, 20_000, 768)...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	var entries int
	for i := 0; i < b.N; i++ {
		sr := NewSegmentReader(bytes.NewReader(data), SegmentName(1))
		for {
			_, err := sr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			entries++
		}
	}
	b.ReportMetric(float64(entries)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkDigest hashes a state of 20,000 768-dim records.
func BenchmarkDigest(b *testing.B) {
	s := NewState()
	for _, e := range genEntries(8, 30_000, 768) {
		if err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(s.Bytes())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Digest()
	}
	b.ReportMetric(float64(s.Len())*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkReplayAfterDay compares what a backup after a day of activity
// does to get the state digest: a replay of the whole 768-dim log
// ("from-start") against a resume from the previous replay's checkpoint
// ("resumed", ReplayResume), each followed by DigestVerified, with 2 % more
// entries appended since the checkpoint. Page cache warm; reports CPU
// seconds per replay beside the wall.
func BenchmarkReplayAfterDay(b *testing.B) {
	const n, day = 50_000, 1_000
	dir := b.TempDir()
	es := genEntries(42, n+day, 768)
	writeLog(b, dir, DefaultMaxSegmentSize, es[:n])
	l0, err := OpenLog(dir)
	if err != nil {
		b.Fatal(err)
	}
	s0 := NewZeroCopyState()
	if err := s0.TrackLtHash(); err != nil {
		b.Fatal(err)
	}
	_, cp, _, err := l0.ReplayResume(context.Background(), nil, s0)
	if err == nil {
		_, err = s0.DigestOf(DigestKindLtHash)
		cp.AdoptLtHash(s0)
	}
	s0.Close()
	if err != nil || cp == nil {
		b.Fatal(err)
	}
	writeLog(b, dir, DefaultMaxSegmentSize, es[n:])
	l, err := OpenLog(dir)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := cp.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name       string
		resume, lt bool
	}{{"from-start", false, false}, {"resumed", true, false}, {"resumed-v2", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				var cp *Checkpoint
				if mode.resume {
					if cp, err = ParseCheckpoint(enc); err != nil { // as read from the cache
						b.Fatal(err)
					}
				}
				s := NewZeroCopyState()
				if mode.lt {
					// What a backup does: the version-2 digest kept up
					// from the checkpoint's, the next checkpoint encoded.
					if err := s.TrackLtHash(); err != nil {
						b.Fatal(err)
					}
				}
				pos, next, resumed, err := l.ReplayResume(context.Background(), cp, s)
				if err != nil || pos.Seq != n+day || resumed != mode.resume {
					b.Fatal(err, pos, resumed)
				}
				kind := ""
				if mode.lt {
					kind = DigestKindLtHash
				}
				if _, err := s.DigestOf(kind); err != nil {
					b.Fatal(err)
				}
				if mode.lt {
					if _, err := next.MarshalBinary(); err != nil {
						b.Fatal(err)
					}
				}
				s.Close()
			}
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			}
		})
	}
}

// BenchmarkFirstBackupReplay does what a first backup does to each space's
// WAL, on real data dirs: a zero-copy ReplayResume from nothing and the
// version-2 digest computed over the live records, for every WAL directory
// in MEMENTO_BENCH_WALDIRS (space-separated, one after the other, as the
// backup's replays take turns); skipped without it. Reports CPU seconds per
// pass beside the wall. With -benchtime=1x after dropping the page cache it
// measures the cold case (docs/benchmarks.md, issue 18 session 16).
func BenchmarkFirstBackupReplay(b *testing.B) {
	dirs := strings.Fields(os.Getenv("MEMENTO_BENCH_WALDIRS"))
	if len(dirs) == 0 {
		b.Skip("MEMENTO_BENCH_WALDIRS is not set")
	}
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		for _, d := range dirs {
			l, err := OpenLog(d)
			if err != nil {
				b.Fatal(err)
			}
			s := NewZeroCopyState()
			if _, _, _, err := l.ReplayResume(context.Background(), nil, s); err != nil {
				b.Fatal(err)
			}
			if _, err := s.DigestOf(DigestKindLtHash); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}
