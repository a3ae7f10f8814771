package walarchive

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// BenchmarkWALArchiveCycleOneEntry is the cost of one archive run of `wal
// watch` and of the agent when one new WAL entry arrived since the last run
// (the steady state of a database written at a few hundred entries/s and
// archived every few hundred ms): wall time per run (ns/op), and CPU time
// per run (cpu-ms/op, the process's user+system time) and pack bytes written
// per run (stored-B/op).
func BenchmarkWALArchiveCycleOneEntry(b *testing.B) {
	tr := repotest.New(b, repo.InitOptions{})
	dd := b.TempDir()
	const space = "sp"
	w, err := walreplay.OpenWriter(filepath.Join(dd, "spaces", space, "wal"), walreplay.WriterOptions{MaxSegmentSize: 32 << 20, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	seq := uint64(0)
	appendOne := func() {
		seq++
		e := &walreplay.Entry{Seq: seq, TimestampNS: repotest.EngramEpoch + int64(seq)*1000, Type: walreplay.EpisodeStore,
			Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: fmt.Sprintf("mem-%07d", seq), Content: "a memory of something that happened, a few words long"})}
		if err := w.Append(e); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	for range 2000 {
		appendOne()
	}
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()
	ctx := context.Background()
	if _, err := ar.ArchiveSpace(ctx, dd, space); err != nil {
		b.Fatal(err)
	}
	cpu0 := processCPU()
	var stored int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		appendOne()
		b.StartTimer()
		res, err := ar.ArchiveSpace(ctx, dd, space)
		if err != nil {
			b.Fatal(err)
		}
		stored += res.StoredBytes
		if res.LastSeq != seq {
			b.Fatalf("archived through %d, want %d", res.LastSeq, seq)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(stored)/float64(b.N), "stored-B/op")
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
