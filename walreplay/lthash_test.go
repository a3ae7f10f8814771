package walreplay

import (
	"context"
	"crypto/aes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/cpu"
)

// The SWAR add and sub agree with lane-by-lane arithmetic mod 2^16,
// including the carries and borrows out of every bit position.
func TestLtHashLaneArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	edge := []uint16{0, 1, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff}
	for round := 0; round < 200; round++ {
		var a, b ltHash
		for i := range a {
			a[i], b[i] = rng.Uint64(), rng.Uint64()
			if round < 2 {
				// Every pair of edge values in some lane.
				var aw, bw uint64
				for k := 0; k < 4; k++ {
					j := (i*4 + k)
					aw |= uint64(edge[j%len(edge)]) << (16 * k)
					bw |= uint64(edge[(j/len(edge))%len(edge)]) << (16 * k)
				}
				a[i], b[i] = aw, bw
			}
		}
		sum, diff := a, a
		sum.add(&b)
		diff.sub(&b)
		for l := 0; l < ltLanes; l++ {
			x, y := lane(&a, l), lane(&b, l)
			if got := lane(&sum, l); got != x+y {
				t.Fatalf("lane %d: %#x + %#x = %#x, want %#x", l, x, y, got, x+y)
			}
			if got := lane(&diff, l); got != x-y {
				t.Fatalf("lane %d: %#x - %#x = %#x, want %#x", l, x, y, got, x-y)
			}
		}
		back := sum
		back.sub(&b)
		if back != a {
			t.Fatal("(a + b) - b != a")
		}
	}
}

func lane(h *ltHash, l int) uint16 { return uint16(h[l/4] >> (16 * (l % 4))) }

// refVector is the element vector straight from the spec, independent of
// the package's code: AES-256 of big-endian counter blocks 0..127 under
// the BLAKE3-256 of the payload, lanes little-endian.
func refVector(p []byte) [ltLanes]uint16 {
	k := blake3.Sum256(p)
	c, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err)
	}
	var v [ltLanes]uint16
	var ctr, out [16]byte
	for blk := 0; blk < ltBytes/16; blk++ {
		binary.BigEndian.PutUint64(ctr[8:], uint64(blk))
		c.Encrypt(out[:], ctr[:])
		for j := 0; j < 8; j++ {
			v[blk*8+j] = binary.LittleEndian.Uint16(out[2*j:])
		}
	}
	return v
}

// digestV2 is the version-2 digest of the model, from the spec: lane-wise
// sums of refVector, then derive_key over the lanes little-endian.
func (m model) digestV2() string {
	var acc [ltLanes]uint16
	for _, r := range m {
		v := refVector(AppendRecord(nil, &r))
		for l := range acc {
			acc[l] += v[l]
		}
	}
	b := make([]byte, 0, ltBytes)
	for _, x := range acc {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	var d [32]byte
	blake3.DeriveKey("memento 2026-12 engram state digest v2 lthash16", b, d[:])
	return hexDigest(d)
}

// digestOf is s's digest of kind, failing the test on error.
func digestOf(t *testing.T, s *State, kind string) string {
	t.Helper()
	d, err := s.DigestOf(kind)
	if err != nil {
		t.Fatal(err)
	}
	return hexDigest(d)
}

// TestLtHashEmptyDigest pins the version-2 digest of the empty state
// (derive_key of 2048 zero bytes), which differs from version 1's.
func TestLtHashEmptyDigest(t *testing.T) {
	const want = "d41c436411896a3cdb2c9f596e8a0e31c28905b3d2aa2176b8aaa24500181eb6"
	s := NewState()
	got := digestOf(t, s, DigestKindLtHash)
	if m := (model{}).digestV2(); got != m {
		t.Fatalf("empty v2 digest %s, the model's %s", got, m)
	}
	if got != want {
		t.Fatalf("empty v2 digest %s, want %s", got, want)
	}
	if got == hexDigest(s.Digest()) {
		t.Fatal("v2 equals v1")
	}
	if _, err := s.DigestOf("lthash17"); err == nil {
		t.Fatal("an unknown kind gave a digest")
	}
}

// The digest maintained entry by entry (stores, updates in place and
// resized, deletes, stores after deletes, zero-copy and copying States)
// equals the one computed from scratch over the state and the model's, at
// every step of a random log, and differs from version 1.
func TestLtHashIncremental(t *testing.T) {
	es := genEntries(11, 1500, 6)
	m := model{}
	tracked := NewState()
	if err := tracked.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		m.apply(t, e)
		if err := tracked.Apply(e); err != nil {
			t.Fatal(err)
		}
		if i%97 != 0 && i != len(es)-1 {
			continue
		}
		scratch := NewState()
		for _, r := range m {
			if err := scratch.Apply(store(1, 1, &r)); err != nil {
				t.Fatal(err)
			}
		}
		got, want := digestOf(t, tracked, DigestKindLtHash), digestOf(t, scratch, DigestKindLtHash)
		if got != want {
			t.Fatalf("after entry %d: tracked %s, from scratch %s", i, got, want)
		}
		if i%485 == 0 {
			if md := m.digestV2(); got != md {
				t.Fatalf("after entry %d: tracked %s, model %s", i, got, md)
			}
		}
		if got == hexDigest(tracked.Digest()) {
			t.Fatalf("after entry %d: v2 equals v1", i)
		}
	}
	if err := tracked.TrackLtHash(); err == nil {
		t.Fatal("TrackLtHash on a filled State succeeded")
	}

	// A zero-copy replay over several segments gives the same.
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es)
	zc := NewZeroCopyState()
	defer zc.Close()
	if err := zc.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	if _, err := mustOpenLog(t, dir).Replay(context.Background(), Target{}, zc); err != nil {
		t.Fatal(err)
	}
	if got, want := digestOf(t, zc, DigestKindLtHash), m.digestV2(); got != want {
		t.Fatalf("zero-copy replay: %s, want %s", got, want)
	}
}

// Adding then removing records leaves the digest where it was: the
// multiset hash of a state does not depend on its history.
func TestLtHashAddThenRemove(t *testing.T) {
	s := NewState()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	empty := digestOf(t, s, DigestKindLtHash)
	a, b := rec("a", 0.5, "alpha", 1), rec("b", 0.25, "bravo", 2)
	for _, e := range []*Entry{store(1, 1, a), store(2, 1, b), upd(3, 1, rec("a", 0.1, "alpha, longer now", 1, 2, 3))} {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	two := digestOf(t, s, DigestKindLtHash)
	for _, e := range []*Entry{del(4, 1, "a"), del(5, 1, "b"), del(6, 1, "nobody")} {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := digestOf(t, s, DigestKindLtHash); got != empty || two == empty {
		t.Fatalf("after deleting all: %s, empty %s (two records: %s)", got, empty, two)
	}
}

// A replay that tracks version 2 and resumes from checkpoints after days
// of appends (stores, updates and deletes of records the checkpoint holds)
// gives the digest a replay from the start gives, reading only the appended
// entries and the old records they remove.
func TestLtHashResume(t *testing.T) {
	es := genEntries(13, 5000, 6)
	// The last day also updates and deletes the very first records.
	n := uint64(len(es))
	ts := es[len(es)-1].TimestampNS
	es = append(es, upd(n+1, ts, rec("mem-000000", 0.3, "changed", 1)), del(n+2, ts, "mem-000001"), del(n+3, ts, "mem-000002"))
	dir := t.TempDir()
	var cp *Checkpoint
	done := 0
	for _, end := range []int{2500, 2501, 4000, len(es)} {
		writeLog(t, dir, 128<<10, es[done:end])
		done = end
		s := NewZeroCopyState()
		if err := s.TrackLtHash(); err != nil {
			t.Fatal(err)
		}
		var in *Checkpoint
		if cp != nil {
			in = roundTrip(t, cp)
		}
		_, next, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), in, s)
		if err != nil || resumed != (cp != nil) {
			t.Fatalf("after %d entries: resumed %v err %v", end, resumed, err)
		}
		got := digestOf(t, s, DigestKindLtHash)
		s.Close()
		if want := modelOf(t, es[:end]).digestV2(); got != want {
			t.Fatalf("after %d entries: %s, want %s", end, got, want)
		}
		if next == nil || next.lt == nil {
			t.Fatalf("after %d entries: no checkpoint with the accumulator", end)
		}
		cp = next
	}

	// A State that does not track version 2 resumes from the same
	// checkpoint (and computes it from scratch when asked).
	s := NewZeroCopyState()
	defer s.Close()
	_, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), roundTrip(t, cp), s)
	if err != nil || !resumed {
		t.Fatalf("untracked: resumed %v err %v", resumed, err)
	}
	if got, want := digestOf(t, s, DigestKindLtHash), modelOf(t, es).digestV2(); got != want {
		t.Fatalf("untracked, from scratch: %s, want %s", got, want)
	}
}

// A checkpoint without the accumulator (made by a replay that did not track
// it) is not resumed from by one that does: it replays from the start,
// without tracking (cheaper computed afterwards), and the digest computed
// after it is adopted by the next checkpoint.
func TestLtHashResumeNeedsAccumulator(t *testing.T) {
	es := genEntries(5, 1200, 4)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es)
	_, _, cp, _, err := replayResume(t, dir, nil)
	if err != nil || cp == nil || cp.lt != nil {
		t.Fatalf("untracked checkpoint: %v, lt %v", err, cp != nil && cp.lt != nil)
	}
	s := NewZeroCopyState()
	defer s.Close()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	_, next, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), roundTrip(t, cp), s)
	if err != nil || resumed {
		t.Fatalf("resumed %v err %v, want a replay from the start", resumed, err)
	}
	if s.lt != nil {
		t.Fatal("the replay from the start tracked version 2 through the whole WAL")
	}
	if got, want := digestOf(t, s, DigestKindLtHash), modelOf(t, es).digestV2(); got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	next.AdoptLtHash(s)
	if next == nil || next.lt == nil {
		t.Fatal("the replay from the start made no checkpoint with the accumulator")
	}
}

// An update or delete whose old record is not where the checkpoint says
// fails the digest with ErrCheckpointStale (the caller replays from the
// start) and makes no checkpoint.
func TestLtHashResumeStale(t *testing.T) {
	es := genEntries(9, 3000, 8)
	dir := t.TempDir()
	writeLog(t, dir, 128<<10, es[:2000])
	s, cp, _ := resumeLt(t, dir, nil)
	s.Close()
	writeLog(t, dir, 128<<10, es[2000:])
	moved := func() *Checkpoint {
		c := roundTrip(t, cp)
		moveRecordsBack(c)
		return c
	}
	stale := moved()
	cp = moved()
	s = NewZeroCopyState()
	defer s.Close()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	_, next, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), cp, s)
	if err != nil || !resumed {
		t.Fatalf("resumed %v err %v", resumed, err)
	}
	if _, err := s.DigestOf(DigestKindLtHash); !errors.Is(err, ErrCheckpointStale) {
		t.Fatalf("DigestOf = %v, want ErrCheckpointStale", err)
	}
	if next != nil {
		t.Fatal("a stale replay made a checkpoint")
	}

	// Computed after the replay instead (a State that did not track it),
	// the pass over the records sees it too.
	u := NewZeroCopyState()
	defer u.Close()
	if _, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), stale, u); err != nil || !resumed {
		t.Fatalf("untracked: resumed %v err %v", resumed, err)
	}
	if _, err := u.DigestOf(DigestKindLtHash); !errors.Is(err, ErrCheckpointStale) {
		t.Fatalf("untracked DigestOf = %v, want ErrCheckpointStale", err)
	}
}

// BenchmarkLtHashElement is the cost of one element vector of a 3.2 KB
// payload (BLAKE3 + AES-256-CTR expansion) and its addition, through
// crypto/aes (aes-ctr) and as the replay computes it (accum); the XOF
// variant is the expansion the spec did not choose, for comparison.
func BenchmarkLtHashElement(b *testing.B) {
	p := make([]byte, 3200)
	for i := range p {
		p[i] = byte(i * 7)
	}
	b.Run("aes-ctr", func(b *testing.B) {
		var x ltExpander
		var acc ltHash
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			acc.add(x.vector(p))
		}
	})
	b.Run("accum", func(b *testing.B) { // what the replay runs: AES-NI when the CPU has it
		var x ltExpander
		var acc ltHash
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			x.add(&acc, p)
		}
	})
	b.Run("blake3-xof", func(b *testing.B) {
		var acc, v ltHash
		var buf [ltBytes]byte
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			h := blake3.New()
			h.Write(p)
			_, _ = h.Digest().Read(buf[:])
			v.setBytes(buf[:])
			acc.add(&v)
		}
	})
	b.Run("expand-only-aes", func(b *testing.B) {
		var x ltExpander
		k := blake3.Sum256(p)
		for b.Loop() {
			c, _ := aes.NewCipher(k[:])
			_ = c
			x.vector(k[:])
		}
	})
	b.Run("blake3-only", func(b *testing.B) {
		for b.Loop() {
			_ = blake3.Sum256(p)
		}
	})
}

// The backup's first replay does not track version 2 (it computes it after
// the replay, over the live records only) and gives the accumulator to its
// checkpoint (AdoptLtHash): the next, tracking replay resumes from it and
// gets the digest of the grown log.
func TestLtHashAdoptedByCheckpoint(t *testing.T) {
	es := genEntries(17, 3000, 4)
	dir := t.TempDir()
	writeLog(t, dir, 64<<10, es[:2000])
	s := NewZeroCopyState()
	_, cp, _, err := mustOpenLog(t, dir).ReplayResume(context.Background(), nil, s)
	if err != nil || cp == nil || cp.lt != nil {
		t.Fatalf("first replay: %v", err)
	}
	if got, want := digestOf(t, s, DigestKindLtHash), modelOf(t, es[:2000]).digestV2(); got != want {
		t.Fatalf("from scratch: %s, want %s", got, want)
	}
	cp.AdoptLtHash(s)
	s.Close()
	writeLog(t, dir, 64<<10, es[2000:])
	s = NewZeroCopyState()
	defer s.Close()
	if err := s.TrackLtHash(); err != nil {
		t.Fatal(err)
	}
	_, _, resumed, err := mustOpenLog(t, dir).ReplayResume(context.Background(), roundTrip(t, cp), s)
	if err != nil || !resumed {
		t.Fatalf("resumed %v err %v", resumed, err)
	}
	if got, want := digestOf(t, s, DigestKindLtHash), modelOf(t, es).digestV2(); got != want {
		t.Fatalf("resumed: %s, want %s", got, want)
	}
}

// A state of more records than ltParallel is summed on two goroutines,
// reading runs of neighbouring records with pread; a copying State's records
// (no descriptor) go the other way. Both give the model's digest.
func TestLtHashScratchParallel(t *testing.T) {
	es := genEntries(19, 12000, 2)
	want := modelOf(t, es)
	if len(want) < ltParallel {
		t.Fatalf("%d live records, want at least %d", len(want), ltParallel)
	}
	dir := t.TempDir()
	writeLog(t, dir, 256<<10, es)
	zc, plain := NewZeroCopyState(), NewState()
	defer zc.Close()
	for _, s := range []*State{zc, plain} {
		if _, err := mustOpenLog(t, dir).Replay(context.Background(), Target{}, s); err != nil {
			t.Fatal(err)
		}
		if got := digestOf(t, s, DigestKindLtHash); got != want.digestV2() {
			t.Fatalf("zero-copy %v: %s, want %s", s.zeroCopy, got, want.digestV2())
		}
	}
}

// TestLtHashAccumAESMatchesCTR: the AES-NI expansion (ltAccumAES) adds and
// subtracts, bit for bit, the vector crypto/aes's CTR gives (expandKey) and
// the spec's (refVector), for random keys into random accumulators, and the
// expander's add and sub take the path the CPU has.
func TestLtHashAccumAESMatchesCTR(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var x ltExpander
	for round := range 300 {
		var k [32]byte
		for i := range k {
			k[i] = byte(rng.Uint32())
		}
		if round == 0 {
			k = [32]byte{} // the all-zero key too
		}
		var acc ltHash
		for i := range acc {
			acc[i] = rng.Uint64()
		}
		want := acc
		want.add(x.expandKey(&k))
		wantSub := acc
		wantSub.sub(x.expandKey(&k))
		if haveLtAccumAES && cpu.X86.HasAES {
			got := acc
			ltAccumAES(&got, &k, false)
			if got != want {
				t.Fatalf("round %d: ltAccumAES add differs from crypto/aes CTR", round)
			}
			got = acc
			ltAccumAES(&got, &k, true)
			if got != wantSub {
				t.Fatalf("round %d: ltAccumAES sub differs from crypto/aes CTR", round)
			}
		}
	}
	// The expander's add/sub of payloads against the spec's vector.
	for n := range 40 {
		p := make([]byte, n*97)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		ref := refVector(p)
		var acc ltHash
		x.add(&acc, p)
		for l := range ltLanes {
			if got := lane(&acc, l); got != ref[l] {
				t.Fatalf("payload of %d bytes: lane %d = %#x, the spec's %#x", len(p), l, got, ref[l])
			}
		}
		x.sub(&acc, p)
		if acc != (ltHash{}) {
			t.Fatalf("payload of %d bytes: add then sub is not zero", len(p))
		}
	}
	if !haveLtAccumAES || !cpu.X86.HasAES {
		t.Log("no AES-NI here: only the crypto/aes path was checked")
	}
}

// vector returns the element vector of payload p (valid until the next
// call), through crypto/aes: what the replay computed per record before
// ltAccumAES, kept for the benchmark's comparison.
func (x *ltExpander) vector(p []byte) *ltHash {
	k := blake3.Sum256(p)
	return x.expandKey(&k)
}
