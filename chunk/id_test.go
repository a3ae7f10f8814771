package chunk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"
)

func TestIDText(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i * 7)
	}
	const hexID = "00070e151c232a31383f464d545b626970777e858c939aa1a8afb6bdc4cbd2d9"
	if got := id.String(); got != hexID {
		t.Fatalf("String = %s", got)
	}
	if got := id.Short(); got != "00070e15" {
		t.Fatalf("Short = %s", got)
	}
	js, err := json.Marshal(map[string]ID{"id": id})
	if err != nil || string(js) != `{"id":"`+hexID+`"}` {
		t.Fatalf("json = %s, %v", js, err)
	}
	var back map[string]ID
	if err := json.Unmarshal(js, &back); err != nil || back["id"] != id {
		t.Fatalf("json round trip: %v %v", back, err)
	}
	if got, err := ParseID(strings.ToUpper(hexID)); err != nil || got != id {
		t.Fatalf("ParseID upper: %v %v", got, err)
	}
}

func TestParseIDRejects(t *testing.T) {
	for _, s := range []string{"", "00", strings.Repeat("0", 63), strings.Repeat("0", 65), strings.Repeat("g", 64), " " + strings.Repeat("0", 63)} {
		if _, err := ParseID(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ParseID(%q) err = %v, want ErrInvalidID", s, err)
		}
	}
	var id ID
	if err := json.Unmarshal([]byte(`"abc"`), &id); !errors.Is(err, ErrInvalidID) {
		t.Errorf("UnmarshalText short: %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	var master [32]byte
	copy(master[:], "memento test master key 32 bytes")
	data := []byte("the same bytes in two spaces")
	a, b := DeriveKey(master, "space-a"), DeriveKey(master, "space-b")
	if a.Equal(b) {
		t.Fatal("two spaces derived the same key")
	}
	if a.Sum(data) == b.Sum(data) {
		t.Fatal("same bytes got the same ID in two spaces")
	}
	if !a.Equal(DeriveKey(master, "space-a")) || a.Sum(data) != DeriveKey(master, "space-a").Sum(data) {
		t.Fatal("DeriveKey or Sum not deterministic")
	}
	other := master
	other[0] ^= 1
	if DeriveKey(other, "space-a").Equal(a) {
		t.Fatal("different master gave the same key")
	}
	// The derivation is BLAKE3 derive_key(context, master || space), and Sum
	// is keyed BLAKE3-256: pin both against the reference construction.
	var want [32]byte
	blake3.DeriveKey("memento 2026-11 chunk id v1", append(master[:], "space-a"...), want[:])
	if string(a.Bytes()) != string(want[:]) {
		t.Fatal("DeriveKey is not derive_key(context, master||space)")
	}
	h, _ := blake3.NewKeyed(want[:])
	h.Write(data)
	var wantID ID
	h.Sum(wantID[:0])
	if a.Sum(data) != wantID {
		t.Fatal("Sum is not keyed BLAKE3-256")
	}
	k, err := KeyFromBytes(a.Bytes())
	if err != nil || !k.Equal(a) {
		t.Fatalf("KeyFromBytes: %v", err)
	}
	if _, err := KeyFromBytes(make([]byte, 31)); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("KeyFromBytes(31 bytes): %v", err)
	}
}

// TestKeyOwnsItsHashers: every way to get a Key of the same bytes (derived,
// from bytes, a copy, the zero Key with no pool) gives the same IDs, and many
// goroutines hashing with one Key (sharing its pool) get the IDs one
// goroutine gets.
func TestKeyOwnsItsHashers(t *testing.T) {
	var zero Key
	fromZeros, err := KeyFromBytes(make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("pooled or not, the same ID")
	if !zero.Equal(fromZeros) || zero.Sum(data) != fromZeros.Sum(data) {
		t.Fatalf("zero Key %s, KeyFromBytes(zeros) %s", zero.Sum(data), fromZeros.Sum(data))
	}
	k := DeriveKey([32]byte{3}, "s1")
	raw, err := KeyFromBytes(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := make([]ID, 64)
	for i := range want {
		want[i] = k.Sum(bytes.Repeat([]byte{byte(i)}, 100*i))
		if got := raw.Sum(bytes.Repeat([]byte{byte(i)}, 100*i)); got != want[i] {
			t.Fatalf("input %d: KeyFromBytes(k.Bytes()) gives %s, k gives %s", i, got, want[i])
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(want))
	for range 8 {
		c := k // copies share k's pool
		wg.Go(func() {
			for i := range want {
				if got := c.Sum(bytes.Repeat([]byte{byte(i)}, 100*i)); got != want[i] {
					errs <- fmt.Sprintf("input %d: %s, want %s", i, got, want[i])
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
