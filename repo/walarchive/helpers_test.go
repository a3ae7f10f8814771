package walarchive

// Test helpers copied from package repo's tests (helpers_test.go,
// verify_helpers_test.go, pitr_bench_test.go) for issue 13; the integrator
// unifies them.

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/walreplay"
)

// testPassword opens every repository the tests create.
const testPassword = "correct horse battery staple"

// fastKDF keeps argon2id cheap in tests; the real cost is DefaultKDF.
var fastKDF = repo.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// testRepo is a repository on a real local directory with its own cache dir.
type testRepo struct {
	*repo.Repository
	dir   string // repository directory
	cache string // local index cache directory
	be    *local.Backend
}

// newTestRepo creates and opens a fresh repository under t.TempDir().
func newTestRepo(t testing.TB, opts repo.InitOptions) *testRepo {
	t.Helper()
	base := t.TempDir()
	tr := &testRepo{dir: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache")}
	be, err := local.Create(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	tr.be = be
	if opts.KDF == (repo.KDFParams{}) {
		opts.KDF = fastKDF
	}
	if opts.Password == "" && !opts.Insecure {
		opts.Password = testPassword
	}
	if _, err := repo.Init(context.Background(), be, opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	tr.Repository = tr.reopen(t)
	return tr
}

// reopen opens the repository again, as a new process would.
func (tr *testRepo) reopen(t testing.TB) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), tr.be, repo.Options{Password: testPassword, CacheDir: tr.cache})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r
}

// packFiles returns the paths of all pack files of the repository.
func (tr *testRepo) packFiles(t testing.TB) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(tr.dir, repo.DirData), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// engramEpoch is where the test WALs' timestamps start.
const engramEpoch = int64(1_790_000_000_000_000_000)

// writeSpaceWAL writes the WAL of one space of an Engram data dir: n
// entries (stores and updates of n/2 ids, a delete every 11th) in segments
// of about segSize bytes. It is the WAL part of package repo's
// writeEngramSpace (the archiver reads nothing else of the space).
func writeSpaceWAL(t testing.TB, dataDir, space string, n int, segSize int64) {
	t.Helper()
	sd := filepath.Join(dataDir, "spaces", space)
	w, err := walreplay.OpenWriter(filepath.Join(sd, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mem-%05d", i%(n/2+1))
		e := &walreplay.Entry{Seq: uint64(i), TimestampNS: engramEpoch + int64(i)*1000, Type: walreplay.EpisodeStore}
		switch {
		case i%11 == 0 && i > 11:
			e.Type, e.Payload = walreplay.MemoryDelete, walreplay.AppendDelete(nil, fmt.Sprintf("mem-%05d", (i-5)%(n/2+1)))
		default:
			if i > n/2 {
				e.Type = walreplay.MemoryUpdate
			}
			emb := make([]float32, 16)
			for k := range emb {
				emb[k] = float32(i*k%97) / 97
			}
			e.Payload = walreplay.AppendRecord(nil, &walreplay.Record{ID: id, Confidence: float32(i%100) / 100, Embedding: emb,
				Content: strings.Repeat(fmt.Sprintf("memory %d ", i), 1+i%5)})
		}
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// walFixture writes WAL entries of a space like a database does: 768-dim
// records, an id reused now and then (updates), a delete every 16 entries.
type walFixture struct {
	dataDir, space string
	w              *walreplay.Writer
	rng            *rand.Rand
	seq            uint64
	ts             int64
	rec            walreplay.Record
	buf            []byte
}

func newWALFixture(tb testing.TB, segSize int64) *walFixture {
	tb.Helper()
	dd := tb.TempDir()
	space := "bench"
	w, err := walreplay.OpenWriter(filepath.Join(dd, "spaces", space, "wal"), walreplay.WriterOptions{MaxSegmentSize: segSize, BufferSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	f := &walFixture{dataDir: dd, space: space, w: w, rng: rand.New(rand.NewPCG(1, 2)), ts: 1_800_000_000_000_000_000}
	f.rec.Embedding = make([]float32, 768)
	return f
}

// write appends entries until at least n more bytes of WAL exist.
func (f *walFixture) write(tb testing.TB, n int64) {
	tb.Helper()
	var written int64
	for written < n {
		f.seq++
		f.ts += int64(f.rng.IntN(200_000))
		e := walreplay.Entry{Seq: f.seq, TimestampNS: f.ts}
		id := fmt.Sprintf("mem-%d", f.rng.IntN(int(f.seq)))
		if f.seq%16 == 0 {
			e.Type = walreplay.MemoryDelete
			f.buf = walreplay.AppendDelete(f.buf[:0], id)
		} else {
			e.Type = walreplay.EpisodeStore
			f.rec.ID, f.rec.Confidence, f.rec.Content = id, f.rng.Float32(), "a memory of something that happened"
			for i := range f.rec.Embedding {
				f.rec.Embedding[i] = float32(f.rng.NormFloat64())
			}
			f.buf = walreplay.AppendRecord(f.buf[:0], &f.rec)
		}
		e.Payload = f.buf
		if err := f.w.Append(&e); err != nil {
			tb.Fatal(err)
		}
		written += e.Size()
	}
	if err := f.w.Sync(); err != nil {
		tb.Fatal(err)
	}
}
