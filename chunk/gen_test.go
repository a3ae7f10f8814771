package chunk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strings"
)

// Synthetic data for tests and benchmarks, deterministic per seed, shaped
// like what Engram writes: float32 embeddings, English text, WAL records.

const embeddingDim = 768

// genFloats returns n bytes of little-endian float32 values drawn from a
// normal distribution with the spread of a unit-norm 768-dim embedding.
func genFloats(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]byte, n)
	sd := 1 / math.Sqrt(embeddingDim)
	i := 0
	for ; i+4 <= n; i += 4 {
		binary.LittleEndian.PutUint32(out[i:], math.Float32bits(float32(r.NormFloat64()*sd)))
	}
	for ; i < n; i++ {
		out[i] = byte(r.Uint32())
	}
	return out
}

var words = strings.Fields(`the of and to a in is it you that he was for on are with as I his they be
at one have this from or had by hot word but what some we can out other were all there when up use your
how said an each she which do their time if will way about many then them write would like so these her
long make thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live where
after back little only round man year came show every good me give our under name very through just form
sentence great think say help low line differ turn cause much mean before move right boy old too same tell
does set three want air well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should country found answer school grow
study still learn plant cover food sun four between state keep eye never last let thought city tree cross
farm hard start might story saw far sea draw left late run don't while press close night real life few north
memory vector embedding recall agent session context retrieve summary index query result model token`)

// genText returns n bytes of English-like text: Zipf-distributed words in
// sentences and paragraphs.
func genText(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6a09e667f3bcc909))
	z := rand.NewZipf(r, 1.1, 2, uint64(len(words)-1))
	var b strings.Builder
	b.Grow(n + 64)
	for b.Len() < n {
		sentence := 5 + r.IntN(15)
		for w := range sentence {
			word := words[z.Uint64()]
			if w == 0 {
				word = strings.ToUpper(word[:1]) + word[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(word)
		}
		if r.IntN(6) == 0 {
			b.WriteString(".\n\n")
		} else {
			b.WriteString(". ")
		}
	}
	return []byte(b.String()[:n])
}

// genWAL returns n bytes shaped like Engram WAL records: a binary header,
// a JSON document with some text, and a 768-dim float32 embedding.
func genWAL(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0xbb67ae8584caa73b))
	out := make([]byte, 0, n+8192)
	seq := uint64(1000)
	ts := uint64(1_780_000_000_000_000_000)
	for len(out) < n {
		seq++
		ts += uint64(r.IntN(5_000_000))
		doc := fmt.Sprintf(`{"op":"upsert","id":"mem-%08d","space":"agent-7","tags":["note","t%d"],"text":%q}`,
			r.IntN(1e8), r.IntN(50), genText(80+r.IntN(400), r.Uint64()))
		emb := genFloats(embeddingDim*4, r.Uint64())
		body := append([]byte(doc), emb...)
		var hdr [24]byte
		binary.LittleEndian.PutUint64(hdr[0:], seq)
		binary.LittleEndian.PutUint64(hdr[8:], ts)
		binary.LittleEndian.PutUint32(hdr[16:], uint32(len(body)))
		binary.LittleEndian.PutUint32(hdr[20:], crc32.ChecksumIEEE(body))
		out = append(out, hdr[:]...)
		out = append(out, body...)
	}
	return out[:n]
}

// genMixed returns n bytes alternating 4 MiB stretches of WAL records,
// embeddings and text: the mix a space's files add up to.
func genMixed(n int, seed uint64) []byte {
	out := make([]byte, 0, n)
	const piece = 4 << 20
	for i := 0; len(out) < n; i++ {
		m := min(piece, n-len(out))
		switch i % 3 {
		case 0:
			out = append(out, genWAL(m, seed+uint64(i))...)
		case 1:
			out = append(out, genFloats(m, seed+uint64(i))...)
		default:
			out = append(out, genText(m, seed+uint64(i))...)
		}
	}
	return out
}

type dataKind struct {
	name string
	gen  func(n int, seed uint64) []byte
}

var dataKinds = []dataKind{
	{"floats", genFloats},
	{"text", genText},
	{"wal", genWAL},
	{"random", func(n int, seed uint64) []byte {
		r := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}},
}
