package walreplay

import (
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zeebo/blake3"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// model is an independent, obviously-correct state: a plain map whose digest
// is computed straight from the spec, to check State against.
type model map[string]Record

// modelOf is the model after es.
func modelOf(t *testing.T, es []*Entry) model {
	t.Helper()
	m := model{}
	for _, e := range es {
		m.apply(t, e)
	}
	return m
}

// mustOpenLog opens the WAL in dir or fails the test.
func mustOpenLog(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := OpenLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (m model) apply(t *testing.T, e *Entry) {
	t.Helper()
	switch e.Type {
	case EpisodeStore, MemoryUpdate:
		r, err := DecodeRecord(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		m[r.ID] = r
	case MemoryDelete:
		id, err := DecodeDelete(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		delete(m, id)
	}
}

func (m model) digest() string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := blake3.New()
	for _, id := range ids {
		r := m[id]
		h.Write(AppendRecord(nil, &r))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hexDigest(d [32]byte) string { return hex.EncodeToString(d[:]) }

func rec(id string, conf float32, content string, emb ...float32) *Record {
	return &Record{ID: id, Confidence: conf, Embedding: emb, Content: content}
}

func store(seq uint64, ts int64, r *Record) *Entry {
	return &Entry{Seq: seq, TimestampNS: ts, Type: EpisodeStore, Payload: AppendRecord(nil, r)}
}

func upd(seq uint64, ts int64, r *Record) *Entry {
	return &Entry{Seq: seq, TimestampNS: ts, Type: MemoryUpdate, Payload: AppendRecord(nil, r)}
}

func del(seq uint64, ts int64, id string) *Entry {
	return &Entry{Seq: seq, TimestampNS: ts, Type: MemoryDelete, Payload: AppendDelete(nil, id)}
}

func marker(seq uint64, ts int64) *Entry {
	return &Entry{Seq: seq, TimestampNS: ts, Type: Marker}
}

// encode concatenates the encodings of es.
func encode(es ...*Entry) []byte {
	var b []byte
	for _, e := range es {
		b = AppendEntry(b, e)
	}
	return b
}

// writeSegments writes raw segment files into a fresh directory.
func writeSegments(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// genEntries makes a deterministic, realistic stream: stores of new ids,
// updates and deletes of existing ones, timestamps that sometimes repeat.
func genEntries(seed uint64, n int, dim int) []*Entry {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var ids []string
	es := make([]*Entry, 0, n)
	ts := int64(1_700_000_000_000_000_000)
	emb := make([]float32, dim)
	for i := 0; i < n; i++ {
		seq := uint64(i + 1)
		if rng.IntN(4) != 0 {
			ts += int64(rng.IntN(1000))
		}
		for j := range emb {
			emb[j] = float32(rng.NormFloat64())
		}
		content := fmt.Sprintf("memory %d: the quick brown fox jumps over the lazy dog %x", i, rng.Uint64())
		switch k := rng.IntN(10); {
		case k < 6 || len(ids) < 10:
			id := fmt.Sprintf("mem-%06d", i)
			ids = append(ids, id)
			es = append(es, store(seq, ts, rec(id, rng.Float32(), content, emb...)))
		case k < 9:
			id := ids[rng.IntN(len(ids))]
			es = append(es, upd(seq, ts, rec(id, rng.Float32(), content, emb...)))
		default:
			j := rng.IntN(len(ids))
			es = append(es, del(seq, ts, ids[j]))
			ids = slices.Delete(ids, j, j+1)
		}
	}
	return es
}

// writeLog writes es through a Writer with the given segment size.
func writeLog(t testing.TB, dir string, maxSeg int64, es []*Entry) {
	t.Helper()
	w, err := OpenWriter(dir, WriterOptions{MaxSegmentSize: maxSeg, BufferSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// moveRecordsBack moves every record of c that lies past HeaderSize in its
// segment HeaderSize bytes back: where an unseen rewrite of a segment
// would leave the checkpoint pointing.
func moveRecordsBack(c *Checkpoint) {
	for i, b := 0, c.recs; i < c.nrecs; i++ {
		f := b[2+int(le.Uint16(b)):]
		if off := le.Uint32(f[4:]); off > HeaderSize {
			le.PutUint32(f[4:], off-HeaderSize)
		}
		b = f[ckRecFixed:]
	}
}
