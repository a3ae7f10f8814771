package fusefs

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"memento/walreplay"

	"golang.org/x/sys/unix"
)

// BenchmarkPointInTimeViewRead reads a 6 MiB file of a recovered point in
// time (a PointInTime.Dir view) sequentially through the mount. Its pages
// are dropped from the kernel's cache before every read (fadvise DONTNEED),
// so each read goes through the passthrough; the backing file itself stays
// in the page cache, as a view just restored does.
//
//	go test -run XXX -bench PointInTimeViewRead ./fusefs/
func BenchmarkPointInTimeViewRead(b *testing.B) {
	tr, _, _ := spaceFixture(b)
	base := time.Date(2026, 11, 21, 14, 29, 0, 0, time.UTC)
	rec := newDirRecoverer(b, base.UnixNano())
	_, mp, _ := mount(b, tr.Repository, Options{PointInTime: rec.recover, ParseInstant: walreplay.ParseTime})
	p := filepath.Join(mp, "spaces", testSpace, "at", base.Format(time.RFC3339), "spaces", testSpace, "cold", "seg-000001.col")
	fi, err := os.Stat(p)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for range b.N {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
