package xaes

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// The two vectors of c2sp.org/XAES-256-GCM: in the first MSB(L) = 0, in the
// second MSB(L) = 1, so both branches of the CMAC subkey are covered.
func TestC2SPVectors(t *testing.T) {
	for _, v := range []struct {
		key       byte
		aad, kx   string
		wantHex   string
		wantK1Hex string
	}{
		{0x01, "", "c8612c9ed53fe43e8e005b828a1631a0bbcb6ab2f46514ec4f439fcfd0fa969b",
			"ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271", "e531954aca063d5b8d9c47a47d4cc6f0"},
		{0x03, "c2sp.org/XAES-256-GCM", "e9c621d4cdd9b11b00a6427ad7e559aeedd66b3857646677748f8ca796cb3fd8",
			"986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d", "23810ec50edb99f374409466ed1f4b7b"},
	} {
		a, err := New(bytes.Repeat([]byte{v.key}, KeySize))
		if err != nil {
			t.Fatal(err)
		}
		nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
		if got := hex.EncodeToString(a.k1[:]); got != v.wantK1Hex {
			t.Errorf("key %02x: K1 %s, want %s", v.key, got, v.wantK1Hex)
		}
		kx := a.deriveKey(nonce)
		if got := hex.EncodeToString(kx[:]); got != v.kx {
			t.Errorf("key %02x: Kx %s, want %s", v.key, got, v.kx)
		}
		ct := a.Seal([]byte("prefix"), nonce, []byte("XAES-256-GCM"), []byte(v.aad))
		if got := hex.EncodeToString(ct[6:]); string(ct[:6]) != "prefix" || got != v.wantHex {
			t.Errorf("key %02x: sealed %q, want prefix + %s", v.key, ct, v.wantHex)
		}
		pt, err := a.Open(nil, nonce, ct[6:], []byte(v.aad))
		if err != nil || string(pt) != "XAES-256-GCM" {
			t.Errorf("key %02x: open = %q, %v", v.key, pt, err)
		}
	}
}

// TestAccumulated is the spec's accumulated randomized test: inputs read
// from SHAKE-128 of the empty string, ciphertexts hashed with another.
// 10,000 iterations by default; the spec's 1,000,000 with
// MEMENTO_XAES_MILLION=1 (about a minute under -race).
func TestAccumulated(t *testing.T) {
	iterations, want := 10_000, "e6b9edf2df6cec60c8cbd864e2211b597fb69a529160cd040d56c0c210081939"
	if os.Getenv("MEMENTO_XAES_MILLION") == "1" {
		iterations, want = 1_000_000, "2163ae1445985a30b60585ee67daa55674df06901b890593e824b8a7c885ab15"
	}
	s, d := sha3.NewSHAKE128(), sha3.NewSHAKE128()
	for range iterations {
		key, nonce := make([]byte, KeySize), make([]byte, NonceSize)
		s.Read(key)
		s.Read(nonce)
		var n [1]byte
		s.Read(n[:])
		plain := make([]byte, n[0])
		s.Read(plain)
		s.Read(n[:])
		aad := make([]byte, n[0])
		s.Read(aad)
		a, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		ct := a.Seal(nil, nonce, plain, aad)
		got, err := a.Open(nil, nonce, ct, aad)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open after seal: %v", err)
		}
		d.Write(ct)
	}
	sum := make([]byte, 32)
	d.Read(sum)
	if got := hex.EncodeToString(sum); got != want {
		t.Errorf("accumulated hash of %d iterations %s, want %s", iterations, got, want)
	}
}

// TestMisuse: a key of the wrong size is refused; a nonce of the wrong size
// does not open (and panics sealing, as crypto/cipher's AEADs do); a
// ciphertext opens in place.
func TestMisuse(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("a %d-byte key accepted", n)
		}
	}
	a, err := New(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, NonceSize)
	ct := a.Seal(nil, nonce, []byte("in place"), nil)
	if _, err := a.Open(nil, nonce[:12], ct, nil); !errors.Is(err, errOpen) {
		t.Errorf("12-byte nonce: %v", err)
	}
	if pt, err := a.Open(ct[:0], nonce, ct, nil); err != nil || string(pt) != "in place" {
		t.Errorf("open in place: %q, %v", pt, err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Seal with a 12-byte nonce did not panic")
		}
	}()
	a.Seal(nil, nonce[:12], nil, nil)
}

// uncached is XAES-256-GCM's Seal done from scratch, as before the cache:
// derive Kx, a new AES-256 and GCM, seal under nonce[12:].
func uncached(t *testing.T, a *AEAD, nonce, plain, ad []byte) []byte {
	t.Helper()
	kx := a.deriveKey(nonce)
	b, err := aes.NewCipher(kx[:])
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, nonce[PrefixSize:], plain, ad)
}

// TestCacheEqualsUncached: sealing through the cache (a hit, a miss in an
// empty slot, a miss replacing another prefix in the same slot) and through
// Prefixed gives the bytes of the uncached derivation; a prefix that
// differs in its last byte only, which lands in the same slot, misses.
func TestCacheEqualsUncached(t *testing.T) {
	a, err := New(bytes.Repeat([]byte{0x42}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	plain, ad := []byte("a blob of a pack"), []byte("blob AD")
	n1 := []byte("prefix-one--suffix-00001")
	n2 := []byte("prefix-one--suffix-00002") // same prefix
	n3 := []byte("prefix-onE--suffix-00001") // same slot (first byte), another prefix
	n4 := []byte("qrefix-one--suffix-00001") // another slot ('q' is 'p'+1)
	for _, n := range [][]byte{n1, n2, n3, n1, n4, n1, n3} {
		want := uncached(t, a, n, plain, ad)
		if got := a.Seal(nil, n, plain, ad); !bytes.Equal(got, want) {
			t.Fatalf("nonce %q: cached seal %x, uncached %x", n, got, want)
		}
		if got := a.Prefix(n[:PrefixSize]).Seal(nil, n, plain, ad); !bytes.Equal(got, want) {
			t.Fatalf("nonce %q: Prefixed seal %x, uncached %x", n, got, want)
		}
		if got, err := a.Open(nil, n, want, ad); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("nonce %q: open of the uncached seal = %q, %v", n, got, err)
		}
	}
	p1 := a.cached(n1)
	if a.cached(n2) != p1 {
		t.Error("a nonce with the same prefix missed the cache")
	}
	if p3 := a.cached(n3); p3 == p1 || p3.prefix != [PrefixSize]byte(n3) {
		t.Errorf("a prefix differing in its 12th byte hit the cache (prefix %q)", p3.prefix)
	}
	if a.cached(n1) == p1 {
		t.Error("n1's derivation survived n3's, which took its slot")
	}
	p4 := a.cached(n4)
	a.cached(n1)
	if a.cached(n4) != p4 {
		t.Error("a prefix of another slot was evicted")
	}
	// The two vectors' nonce once more, through a cache holding other
	// prefixes: still the spec's ciphertext.
	want, _ := hex.DecodeString("ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271")
	v, err := New(bytes.Repeat([]byte{0x01}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range [][]byte{n1, []byte("ABCDEFGHIJKLMNOPQRSTUVWX"), n3, []byte("ABCDEFGHIJKLMNOPQRSTUVWX")} {
		ct := v.Seal(nil, n, []byte("XAES-256-GCM"), nil)
		if string(n) == "ABCDEFGHIJKLMNOPQRSTUVWX" && !bytes.Equal(ct, want) {
			t.Fatalf("c2sp vector after other prefixes: %x, want %x", ct, want)
		}
	}
}

// TestPrefixedWrongNonce: Prefixed refuses to seal under a nonce of
// another prefix (it would be sealed under the wrong derived key).
func TestPrefixedWrongNonce(t *testing.T) {
	a, err := New(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	p := a.Prefix([]byte("prefix-one--"))
	if got := p.NoncePrefix(); string(got[:]) != "prefix-one--" {
		t.Fatalf("NoncePrefix %q", got)
	}
	defer func() {
		if r := recover(); r != "xaes: nonce does not begin with the prefix" {
			t.Errorf("Seal under another prefix: panic %v", r)
		}
	}()
	p.Seal(nil, []byte("prefix-onE--suffix-00001"), nil, nil)
}

// TestConcurrentCache: goroutines seal and open under prefixes that share
// and fight over cache slots at once (run with -race); every ciphertext
// is the uncached one and every open succeeds.
func TestConcurrentCache(t *testing.T) {
	a, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	const prefixes, perPrefix = 40, 4
	type msg struct{ nonce, plain, want []byte }
	var msgs []msg
	for i := range prefixes {
		for j := range perPrefix {
			// The slot is the first byte modulo 16: prefixes i and
			// i+16 share one.
			n := fmt.Appendf(nil, "%c%011dsuffix%06d", 'a'+i%cacheSlots, i, j)
			plain := fmt.Appendf(nil, "message %d of prefix %d", j, i)
			msgs = append(msgs, msg{n, plain, uncached(t, a, n, plain, nil)})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 400 {
				m := msgs[(k*7+g*13)%len(msgs)]
				if got := a.Seal(nil, m.nonce, m.plain, nil); !bytes.Equal(got, m.want) {
					errs <- fmt.Errorf("goroutine %d: seal under %q differs from the uncached one", g, m.nonce)
					return
				}
				if got, err := a.Open(nil, m.nonce, m.want, nil); err != nil || !bytes.Equal(got, m.plain) {
					errs <- fmt.Errorf("goroutine %d: open under %q = %q, %v", g, m.nonce, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
