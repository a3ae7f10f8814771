package chunk

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/restic/chunker"
)

// testPol is restic's test polynomial; otherPol another irreducible one.
const (
	testPol  = chunker.Pol(0x3DA3358B4DC173)
	otherPol = chunker.Pol(0x244A0D841BD48F)
)

// boundaries returns the chunk lengths of data.
func boundaries(t testing.TB, data []byte, pol chunker.Pol, p Params) []int {
	t.Helper()
	lens, joined := cutAll(t, iotest.HalfReader(bytes.NewReader(data)), pol, p)
	if !bytes.Equal(joined, data) {
		t.Fatal("chunks do not reassemble to the input")
	}
	return lens
}

// cutAll cuts r to its end and returns the chunk lengths and the chunks
// joined.
func cutAll(t testing.TB, r io.Reader, pol chunker.Pol, p Params) (lens []int, joined []byte) {
	t.Helper()
	c, err := NewChunker(r, pol, p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	buf := make([]byte, p.Max)
	for {
		ch, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if uint(len(ch)) > p.Max {
			t.Fatalf("chunk of %d > Max %d", len(ch), p.Max)
		}
		lens = append(lens, len(ch))
		joined = append(joined, ch...)
	}
	return lens, joined
}

func TestChunkerBoundaries(t *testing.T) {
	if !otherPol.Irreducible() || !testPol.Irreducible() {
		t.Fatal("test polynomials must be irreducible")
	}
	data := genMixed(12<<20, 5)
	small := Params{Min: 4 << 10, Max: 64 << 10, AverageBits: 14}
	tests := []struct {
		name   string
		params Params
	}{
		{"default", ParamsDefault},
		{"cold", ParamsCold}, // the WAL's are fixed-size since set 3
		{"small", small},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := boundaries(t, data, testPol, tt.params)
			b := boundaries(t, data, testPol, tt.params)
			if !equalInts(a, b) {
				t.Fatal("same polynomial, different boundaries")
			}
			if c := boundaries(t, data, otherPol, tt.params); equalInts(a, c) {
				t.Fatal("another polynomial gave the same boundaries")
			}
			if len(a) < 3 {
				t.Fatalf("only %d chunks", len(a))
			}
			for i, n := range a[:len(a)-1] {
				if uint(n) < tt.params.Min {
					t.Fatalf("chunk %d of %d < Min", i, n)
				}
			}
		})
	}
	t.Run("fixed size when Min == Max", func(t *testing.T) {
		lens := boundaries(t, data[:1<<20+100], testPol, ParamsWarm)
		for i, n := range lens[:len(lens)-1] {
			if uint(n) != ParamsWarm.Max {
				t.Fatalf("chunk %d has %d bytes", i, n)
			}
		}
		if lens[len(lens)-1] != 100 {
			t.Fatalf("last chunk %d bytes, want 100", lens[len(lens)-1])
		}
	})
	t.Run("shift resynchronises", func(t *testing.T) {
		a := boundaries(t, data, testPol, small)
		b := boundaries(t, append([]byte("inserted"), data...), testPol, small)
		common := 0
		set := map[int]int{}
		for _, n := range a {
			set[n]++
		}
		for _, n := range b {
			if set[n] > 0 {
				set[n]--
				common++
			}
		}
		if common < len(a)*9/10 {
			t.Fatalf("after an 8-byte insertion only %d of %d chunk sizes recur", common, len(a))
		}
	})
}

func TestChunkerErrors(t *testing.T) {
	if _, err := NewChunker(nil, testPol, Params{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("zero params: %v", err)
	}
	if _, err := NewChunker(nil, 0, ParamsDefault); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("zero pol: %v", err)
	}
	c, err := NewChunker(bytes.NewReader(make([]byte, 100)), testPol, ParamsDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(make([]byte, 10)); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("small buffer: %v", err)
	}
	c.Release()
	boom := errors.New("disk on fire")
	c, _ = NewChunker(io.MultiReader(bytes.NewReader(make([]byte, 3<<20)), iotest.ErrReader(boom)), testPol, ParamsDefault)
	defer c.Release()
	buf := make([]byte, ParamsDefault.Max)
	for {
		_, err := c.Next(buf)
		if err == nil {
			continue
		}
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the reader's", err)
		}
		break
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rabinLengths returns the chunk lengths restic's chunker itself cuts data
// into with p, the reference for the fixed-size path of Chunker.
func rabinLengths(t *testing.T, data []byte, p Params) []int {
	t.Helper()
	rc := chunker.NewWithBoundaries(bytes.NewReader(data), testPol, p.Min, p.Max)
	rc.SetAverageBits(p.AverageBits)
	var lens []int
	for {
		ch, err := rc.Next(make([]byte, 0, p.Max))
		if errors.Is(err, io.EOF) {
			return lens
		}
		if err != nil {
			t.Fatal(err)
		}
		lens = append(lens, int(ch.Length))
	}
}

// TestChunkerFixedMatchesRabin: with Min == Max, Chunker reads straight into
// the caller's buffer instead of running restic's chunker; the chunks must
// be exactly the ones restic's chunker cuts, or stored WAL and page-file
// chunks would stop deduplicating against old snapshots.
func TestChunkerFixedMatchesRabin(t *testing.T) {
	data := genMixed(3<<20+5, 9)
	for _, p := range []Params{ParamsWAL, ParamsWarm, paramsWarmSet12, {Min: 64, Max: 64, AverageBits: 6}} {
		m := int(p.Max)
		for _, n := range []int{0, 1, 63, 64, 65, m - 1, m, m + 1, 2 * m, 3*m - 1, len(data)} {
			if n > len(data) {
				continue
			}
			want := rabinLengths(t, data[:n], p)
			got := boundaries(t, data[:n], testPol, p)
			if !equalInts(got, want) {
				t.Fatalf("params %+v, %d bytes: chunks %v, restic's chunker cuts %v", p, n, got, want)
			}
		}
	}
}

// TestChunkerFixedReadError: a read error in the fixed-size path is returned
// wrapped with the offset of the chunk it interrupted, after the chunks
// read before it, whether the reader returns it after its bytes or with
// them (nextBlocked reads ahead), and the Chunker then stays at its end.
func TestChunkerFixedReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, with := range []bool{false, true} {
		var r io.Reader = io.MultiReader(bytes.NewReader(make([]byte, 40<<10)), iotest.ErrReader(boom))
		if with {
			r = &dataErrOnce{data: make([]byte, 40<<10), err: boom}
		}
		c, err := NewChunker(r, testPol, ParamsWarm)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		buf := make([]byte, ParamsWarm.Max)
		if ch, err := c.Next(buf); err != nil || len(ch) != 32<<10 {
			t.Fatalf("error with the data %v: first chunk: %d bytes, %v", with, len(ch), err)
		}
		_, err = c.Next(buf)
		if !errors.Is(err, boom) || err.Error() != "read at offset 32768: disk on fire" {
			t.Fatalf("error with the data %v: err = %v, want the reader's at offset 32768", with, err)
		}
		if _, err := c.Next(buf); !errors.Is(err, io.EOF) {
			t.Fatalf("error with the data %v: after the error: %v, want io.EOF", with, err)
		}
		if _, err := c.Next(make([]byte, 10)); !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("small buffer: %v", err)
		}
	}
}

// dataErrOnce returns all of data and err from its first Read, err after.
type dataErrOnce struct {
	data []byte
	err  error
}

func (r *dataErrOnce) Read(b []byte) (int, error) {
	n := copy(b, r.data)
	r.data = r.data[n:]
	if len(r.data) > 0 {
		return n, nil
	}
	return n, r.err
}

// countingReader counts the Read calls that reach r.
type countingReader struct {
	r     io.Reader
	calls int
}

func (c *countingReader) Read(b []byte) (int, error) { c.calls++; return c.r.Read(b) }

// TestChunkerSmallFixedReadsBlocks: fixed chunks smaller than fixedBlock
// (the warm page file's) are cut out of blocks read fixedBlock at a time,
// not one read per chunk, and are the same chunks whether the reader hands
// out its last bytes with io.EOF or after them.
func TestChunkerSmallFixedReadsBlocks(t *testing.T) {
	data := genMixed(3<<20+5, 11)
	for _, last := range []bool{false, true} {
		var r io.Reader = bytes.NewReader(data)
		if last {
			r = iotest.DataErrReader(r)
		}
		cr := &countingReader{r: r}
		lens, joined := cutAll(t, cr, testPol, ParamsWarm)
		for i, n := range lens[:len(lens)-1] {
			if n != int(ParamsWarm.Max) {
				t.Fatalf("DataErrReader %v: chunk %d of %d bytes before the end", last, i, n)
			}
		}
		if !bytes.Equal(joined, data) || len(lens) != 97 || lens[96] != 5 {
			t.Fatalf("DataErrReader %v: %d chunks, reassembled equal %v; want 96 of 32 KiB and one of 5 bytes", last, len(lens), bytes.Equal(joined, data))
		}
		// 4 blocks of data and the read that finds the end (DataErrReader
		// reads 1 KiB at a time below us: only the plain reader counts).
		if !last && cr.calls != 5 {
			t.Fatalf("%d reads of the stream, want 5", cr.calls)
		}
	}
}

// TestChunkerSmallStreamsMatchRabin: with content-defined params, Chunker
// reads a stream's first Min bytes itself and starts restic's chunker only
// when the stream is longer; the chunks must be exactly restic's at every
// length around Min and restic's 512 KiB read buffer, and reassemble to the
// input (boundaries checks that: the first chunk is written into the
// buffer its first Min bytes are read back from).
func TestChunkerSmallStreamsMatchRabin(t *testing.T) {
	data := genMixed(12<<20, 11)
	small := Params{Min: 4 << 10, Max: 64 << 10, AverageBits: 14}
	for _, p := range []Params{ParamsDefault, ParamsCold, small} {
		m := int(p.Min)
		for _, n := range []int{0, 1, 100, m - 1, m, m + 1, 512 << 10, 512<<10 + 1, 2*m + 7, int(p.Max) + 1, len(data)} {
			want := rabinLengths(t, data[:n], p)
			got := boundaries(t, data[:n], testPol, p)
			if !equalInts(got, want) {
				t.Fatalf("params %+v, %d bytes: chunks %v, restic's chunker cuts %v", p, n, got, want)
			}
		}
	}
}

// TestChunkerShortStreamReadError: a read error before Min bytes is returned
// with offset 0, and the Chunker then stays at its end.
func TestChunkerShortStreamReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	c, err := NewChunker(io.MultiReader(bytes.NewReader(make([]byte, 100)), iotest.ErrReader(boom)), testPol, ParamsDefault)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ParamsDefault.Max)
	if _, err := c.Next(buf); !errors.Is(err, boom) || err.Error() != "read at offset 0: disk on fire" {
		t.Fatalf("err = %v, want the reader's at offset 0", err)
	}
	if _, err := c.Next(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after the error: %v, want io.EOF", err)
	}
	c.Release()
	if _, err := c.Next(buf); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("after Release: %v", err)
	}
}
