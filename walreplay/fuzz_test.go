package walreplay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

func FuzzSegmentReader(f *testing.F) {
	for _, dir := range []string{"testdata/golden/basic", "testdata/golden/compacted"} {
		files, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
		for _, p := range files {
			b, _ := os.ReadFile(p)
			f.Add(b, false)
		}
	}
	f.Add(encode(genEntries(9, 5, 3)...), true)
	f.Add([]byte{0xef, 0xbe, 0xad}, false)
	f.Fuzz(func(t *testing.T, data []byte, slow bool) {
		var r io.Reader = bytes.NewReader(data)
		if slow {
			r = iotest.OneByteReader(r) // exercises buffer refills at every byte
		}
		sr := NewSegmentReader(r, SegmentName(1))
		var end int64
		for {
			e, err := sr.Next()
			if err == io.EOF {
				if end != int64(len(data)) {
					t.Fatalf("EOF after %d of %d bytes", end, len(data))
				}
				break
			}
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *CorruptError", err)
				}
				if ce.Offset != end {
					t.Fatalf("error at offset %d, previous entry ended at %d", ce.Offset, end)
				}
				if errors.Is(err, ErrTornTail) == errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v must be exactly one of torn tail or corrupt", err)
				}
				if _, again := sr.Next(); again != err {
					t.Fatal("errors must be sticky")
				}
				break
			}
			if sr.Offset() != end {
				t.Fatalf("entry at %d, previous ended at %d", sr.Offset(), end)
			}
			enc := AppendEntry(nil, e)
			if !bytes.Equal(enc, data[end:end+int64(len(enc))]) {
				t.Fatalf("entry at %d does not re-encode to its bytes", end)
			}
			end += int64(len(enc))
		}
		// The validators and the state must not panic on anything either.
		VerifySegment(context.Background(), bytes.NewReader(data), SegmentName(1))
		s := NewState()
		sr = NewSegmentReader(bytes.NewReader(data), "x")
		for {
			e, err := sr.Next()
			if err != nil {
				break
			}
			s.Apply(e)
		}
		s.Digest()
		s.ConfidenceHistogram(10)
		s.ExportJSONL(io.Discard)
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, rec("a", 0.5, "hello", 1, 2, 3)))
	f.Add(AppendRecord(nil, rec("é", -1, "\"\n\x00", 0)))
	f.Add(AppendDelete(nil, "x"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := DecodeRecord(p)
		if err != nil {
			if !errors.Is(err, errPayload) {
				t.Fatalf("error %v does not wrap errPayload", err)
			}
			if s := NewState(); s.Apply(&Entry{Seq: 1, Type: EpisodeStore, Payload: p}) == nil {
				t.Fatal("State.Apply accepted what DecodeRecord refused")
			}
			return
		}
		// The encoding is canonical: re-encoding gives the same bytes.
		if enc := AppendRecord(nil, &r); !bytes.Equal(enc, p) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, p)
		}
		s := NewState()
		if err := s.Apply(&Entry{Seq: 1, Type: MemoryUpdate, Payload: p}); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := s.ExportJSONL(&buf); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))) {
			t.Fatalf("export is not JSON: %s", buf.Bytes())
		}
		var back struct {
			ID      string `json:"id"`
			Content string `json:"content"`
		}
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.ID != r.ID || back.Content != r.Content {
			t.Fatalf("export does not read back: %v %q %q", err, back.ID, back.Content)
		}
		if _, err := DecodeDelete(p); err == nil && len(p) == 2+len(r.ID) {
			t.Fatal("a record is never a valid delete")
		}
	})
}

// FuzzZeroCopyReplay: any bytes, as the only segment of a log, replay to
// the same position, error text and digests (both versions) into a
// zero-copy State (segment mapped, read into the walk's buffer, records
// referred into the map) as into a copying one.
func FuzzZeroCopyReplay(f *testing.F) {
	for _, dir := range []string{"testdata/golden/basic", "testdata/golden/compacted"} {
		files, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
		for _, p := range files {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	f.Add(encode(genEntries(9, 40, 3)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, SegmentName(1)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		l := mustOpenLog(t, dir)
		ctx := context.Background()
		cp, zc := NewState(), NewZeroCopyState()
		defer zc.Close()
		pos, err := l.Replay(ctx, Target{}, cp)
		zpos, zerr := l.Replay(ctx, Target{}, zc)
		if pos != zpos || (err == nil) != (zerr == nil) || err != nil && err.Error() != zerr.Error() {
			t.Fatalf("zero-copy replay at %+v, %v; copying at %+v, %v", zpos, zerr, pos, err)
		}
		if cp.Digest() != zc.Digest() {
			t.Fatal("zero-copy and copying replays differ in digest v1")
		}
		d, err := cp.DigestOf(DigestKindLtHash)
		zd, zerr := zc.DigestOf(DigestKindLtHash)
		if d != zd || err != nil || zerr != nil {
			t.Fatalf("digest v2: zero-copy %x (%v), copying %x (%v)", zd, zerr, d, err)
		}
	})
}
