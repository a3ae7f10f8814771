package xaes

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"os"
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
