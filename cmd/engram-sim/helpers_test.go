package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"memento/engram"
	"memento/walreplay"
)

func testMix(t testing.TB) mix {
	t.Helper()
	m, err := parseMix("store=60,update=30,delete=10")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// genSmall generates a small data dir for tests.
func genSmall(t testing.TB, dir string, size int64, ids []string, seed uint64, truth string, truthEvery uint64) {
	t.Helper()
	err := generate(context.Background(), generateOpts{dir: dir, size: size, ids: ids, seed: seed, dim: 768,
		segSize: 1 << 20, mix: testMix(t), sameTS: 0.05, tsStep: 5 * time.Millisecond, truth: truth,
		truthEvery: truthEvery, workers: 2, out: io.Discard})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
}

// fileHashes maps every regular file under dir (relative path) to the hex
// BLAKE3-256 of its content.
func fileHashes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := blake3.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readTruth(t testing.TB, path string) []truthLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []truthLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l truthLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		if len(l.Digest) != 64 {
			t.Fatalf("truth line %q: digest is not 64 hex digits", sc.Text())
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayDigest replays a space to a target and returns position and digest.
func replayDigest(t testing.TB, dir, space string, tg walreplay.Target) (walreplay.Position, string) {
	t.Helper()
	l, err := walreplay.OpenLog(engram.WALDir(dir, space))
	if err != nil {
		t.Fatal(err)
	}
	st := walreplay.NewState()
	pos, err := l.Replay(context.Background(), tg, st)
	if err != nil {
		t.Fatalf("replay %s to %s: %v", space, tg, err)
	}
	d := st.Digest()
	return pos, hex.EncodeToString(d[:])
}

// checkTruth verifies every truth line against a replay, both to the line's
// sequence and to its timestamp (lines are placed so that both hold).
func checkTruth(t *testing.T, dir string, lines []truthLine) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatal("no truth lines")
	}
	for _, l := range lines {
		seq, ts := l.Sequence, l.TimestampNS
		pos, d := replayDigest(t, dir, l.Space, walreplay.Target{ToSeq: &seq})
		if pos.Seq != l.Sequence || pos.TimestampNS != l.TimestampNS || d != l.Digest {
			t.Errorf("%s to-seq %d: replay gives seq %d ts %d digest %s, truth says ts %d digest %s",
				l.Space, seq, pos.Seq, pos.TimestampNS, d, l.TimestampNS, l.Digest)
		}
		pos, d = replayDigest(t, dir, l.Space, walreplay.Target{AtTime: &ts})
		if pos.Seq != l.Sequence || d != l.Digest {
			t.Errorf("%s at %d: replay gives seq %d digest %s, truth says seq %d digest %s",
				l.Space, ts, pos.Seq, d, l.Sequence, l.Digest)
		}
	}
}

// walEntries reads every entry of a space's WAL in order (copying), up to
// a torn tail.
type walEntryInfo struct {
	seq  uint64
	ts   int64
	typ  walreplay.EntryType
	size int64
}

func walEntries(t testing.TB, dir, space string) []walEntryInfo {
	t.Helper()
	segs, err := walreplay.ListSegments(engram.WALDir(dir, space))
	if err != nil {
		t.Fatal(err)
	}
	var out []walEntryInfo
	for _, s := range segs {
		f, err := os.Open(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		r := walreplay.NewSegmentReader(f, s.Name)
		for {
			e, err := r.Next()
			if err == io.EOF || errors.Is(err, walreplay.ErrTornTail) {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("%s: %v", s.Name, err)
			}
			out = append(out, walEntryInfo{e.Seq, e.TimestampNS, e.Type, e.Size()})
		}
		f.Close()
	}
	return out
}

// checkWarmPage validates one warm page: all zero, or a valid record page.
func checkWarmPage(t testing.TB, page []byte, n uint32) (free bool) {
	t.Helper()
	if isZero(page) {
		return true
	}
	le := binary.LittleEndian
	if string(page[:4]) != warmMagic || le.Uint32(page[4:]) != n || le.Uint16(page[16:]) != 1 {
		t.Fatalf("page %d: bad header % x", n, page[:24])
	}
	c := crc32.Update(0, castagnoli, page[:20])
	if got := crc32.Update(c, castagnoli, page[24:]); got != le.Uint32(page[20:]) {
		t.Fatalf("page %d: crc %08x, header says %08x", n, got, le.Uint32(page[20:]))
	}
	pl := int(le.Uint16(page[18:]))
	if _, err := walreplay.DecodeRecord(page[24 : 24+pl]); err != nil {
		t.Fatalf("page %d: record: %v", n, err)
	}
	return false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkColdSegment parses a cold segment and verifies its column CRCs.
func checkColdSegment(t testing.TB, path string, dim int) (rows int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if len(b) < coldHeader+8 || string(b[:4]) != coldMagic || string(b[len(b)-4:]) != coldMagic {
		t.Fatalf("%s: bad magic", path)
	}
	if int(le.Uint16(b[6:])) != dim {
		t.Fatalf("%s: dim %d, want %d", path, le.Uint16(b[6:]), dim)
	}
	rows = int(le.Uint32(b[8:]))
	fl := int(le.Uint32(b[len(b)-8:]))
	foot := b[len(b)-fl:]
	end := int64(coldHeader)
	for k := range coldColumns {
		off, n, c := int64(le.Uint64(foot[20*k:])), int64(le.Uint64(foot[20*k+8:])), le.Uint32(foot[20*k+16:])
		if off != end {
			t.Fatalf("%s: column %d at %d, want %d", path, k, off, end)
		}
		if got := crc32.Checksum(b[off:off+n], castagnoli); got != c {
			t.Fatalf("%s: column %d crc %08x, footer says %08x", path, k, got, c)
		}
		end = off + n
	}
	if want := int64(rows) * int64(dim) * 4; int64(le.Uint64(foot[20*5+8:])) != want {
		t.Fatalf("%s: embeddings column %d bytes, want %d", path, le.Uint64(foot[20*5+8:]), want)
	}
	if end != int64(len(b)-fl) {
		t.Fatalf("%s: columns end at %d, footer starts at %d", path, end, len(b)-fl)
	}
	return rows
}
