package walarchive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"memento/repo"
	"memento/repo/repotest"
	"memento/walreplay"
)

// A Watcher running on a real data dir and a real local repository archives
// every entry written while it runs: after it is cancelled, the archive holds
// sequences 1..n as one run, and every segment's records rebuild the
// segment's bytes exactly.
func TestWatcherArchivesWhileWritten(t *testing.T) {
	tr := repotest.New(t, repo.InitOptions{})
	dd := t.TempDir()
	const space = "sp"
	walDir := filepath.Join(dd, "spaces", space, "wal")
	w, err := walreplay.OpenWriter(walDir, walreplay.WriterOptions{MaxSegmentSize: 32 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ar := NewWALArchiver(tr.Repository, nil)
	defer ar.Close()

	var (
		mu      sync.Mutex
		shipped uint64 // highest archived sequence a run reported
		runs    int
		errs    []error
	)
	opts := WatchOptions{DataDir: dd, Interval: 40 * time.Millisecond, Spaces: []string{space},
		Observe: func(sp string, res *WALArchiveResult, err error, now time.Time) {
			mu.Lock()
			defer mu.Unlock()
			runs++
		},
		OnError: func(sp string, err error) {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, fmt.Errorf("space %s: %w", sp, err))
		},
		OnShipped: func(res *WALArchiveResult) {
			mu.Lock()
			defer mu.Unlock()
			shipped = max(shipped, res.LastSeq)
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- NewWatcher(ar, opts).Run(ctx) }()

	// waitShipped waits until the watcher reports entries through seq.
	waitShipped := func(seq uint64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			s := shipped
			mu.Unlock()
			if s >= seq {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30s the watcher has shipped through seq %d, want %d", s, seq)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Write entries in bursts while the watcher runs (several segments,
	// each archived while open and again once sealed).
	const n = 1200
	payload := bytes.Repeat([]byte("a memory of something that happened "), 4)
	for i := 1; i <= n; i++ {
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: repotest.EngramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore,
			Payload: walreplay.AppendRecord(nil, &walreplay.Record{ID: fmt.Sprintf("mem-%05d", i), Content: string(payload)})}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if i == n/2 {
				waitShipped(uint64(i)) // so the rest is archived by later runs
			}
			time.Sleep(15 * time.Millisecond)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitShipped(n)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	mu.Lock()
	if len(errs) > 0 {
		t.Errorf("archive runs failed: %v", errs)
	}
	if runs < 2 {
		t.Errorf("%d archive runs, want at least one during the writes and one after", runs)
	}
	mu.Unlock()

	// What a new process reads from the repository.
	r := tr.Reopen(t)
	arch, err := LoadWALArchive(context.Background(), r, space)
	if err != nil {
		t.Fatal(err)
	}
	if got := arch.Runs(); len(got) != 1 || got[0].FirstSeq != 1 || got[0].LastSeq != n {
		t.Fatalf("archived runs %+v, want one run of sequences 1..%d", got, n)
	}
	if end, ts := arch.End(); end != n || ts != repotest.EngramEpoch+n*1000 {
		t.Fatalf("archive ends at seq %d ts %d, want %d ts %d", end, ts, n, repotest.EngramEpoch+n*1000)
	}
	segs, err := walreplay.ListSegments(walDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments written, want several", len(segs))
	}
	var entries int64
	for i, seg := range segs {
		rec := arch.Record(seg.Name, false)
		if rec == nil {
			t.Fatalf("segment %s is not archived", seg.Name)
		}
		want, err := os.ReadFile(seg.Path)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Size != int64(len(want)) {
			t.Fatalf("segment %s: archived %d bytes of %d", seg.Name, rec.Size, len(want))
		}
		if sealed := i < len(segs)-1; rec.Sealed != sealed {
			t.Errorf("segment %s: record sealed=%v, want %v", seg.Name, rec.Sealed, sealed)
		}
		var got []byte
		for _, c := range rec.Chunks {
			data, err := r.ReadBlob(context.Background(), space, repo.DataBlob, c.ID)
			if err != nil {
				t.Fatalf("segment %s chunk %s: %v", seg.Name, c.ID.Short(), err)
			}
			if len(data) != int(c.Size) {
				t.Fatalf("segment %s chunk %s: %d bytes, record says %d", seg.Name, c.ID.Short(), len(data), c.Size)
			}
			got = append(got, data...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("segment %s: the archived chunks do not rebuild the segment", seg.Name)
		}
		if rec.FirstSeq != seg.FirstSeq || rec.LastSeq-rec.FirstSeq+1 != uint64(rec.Entries) {
			t.Errorf("segment %s: record seq %d..%d with %d entries", seg.Name, rec.FirstSeq, rec.LastSeq, rec.Entries)
		}
		entries += rec.Entries
	}
	if entries != n {
		t.Fatalf("records hold %d entries, want %d", entries, n)
	}
}

// The spacing of one space's runs: MinGap when given, else DefaultMinGap,
// never more than half the poll interval.
func TestWatchMinGap(t *testing.T) {
	for _, tc := range []struct {
		o    WatchOptions
		want time.Duration
	}{
		{WatchOptions{Interval: time.Second}, DefaultMinGap},
		{WatchOptions{Interval: 100 * time.Millisecond}, 50 * time.Millisecond},
		{WatchOptions{Interval: time.Second, MinGap: 2 * time.Second}, 2 * time.Second},
		{WatchOptions{Interval: time.Minute, MinGap: 10 * time.Millisecond}, 10 * time.Millisecond},
	} {
		if got := tc.o.minGap(); got != tc.want {
			t.Errorf("%+v: gap %s, want %s", tc.o, got, tc.want)
		}
	}
}
