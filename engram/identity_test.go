package engram

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestIdentityGolden pins the bytes of identity.json and timelines.json.
func TestIdentityGolden(t *testing.T) {
	idGolden, err := os.ReadFile("testdata/golden/identity.json")
	if err != nil {
		t.Fatal(err)
	}
	id := &Identity{Version: 1, Identity: "0123456789abcdef0123456789abcdef",
		Created: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Host: "db1", DataDir: "/var/lib/engram"}
	if got := EncodeIdentity(id); !bytes.Equal(got, idGolden) {
		t.Errorf("EncodeIdentity = %q, want %q", got, idGolden)
	}
	back, err := ParseIdentity(idGolden)
	if err != nil || *back != *id {
		t.Errorf("ParseIdentity(golden) = %+v, %v", back, err)
	}
	tlGolden, err := os.ReadFile("testdata/golden/timelines.json")
	if err != nil {
		t.Fatal(err)
	}
	tl := &Timelines{}
	tl.SetFork("space-b", 3, &PendingFork{Seq: 4096, TS: 1793491200123456789, Snapshot: "5e1f0c2a", Target: "to-seq 4096", Time: "2026-12-01T10:00:00Z"})
	tl.Set("space-a", 2)
	if got := EncodeTimelines(tl); !bytes.Equal(got, tlGolden) {
		t.Errorf("EncodeTimelines = %q, want %q", got, tlGolden)
	}
	tb, err := ParseTimelines(tlGolden)
	if err != nil || tb.Of("space-a") != 2 || tb.Of("space-b") != 3 || tb.Of("other") != 1 || tb.Fork("space-b") == nil || tb.Fork("space-b").Seq != 4096 || tb.Fork("space-a") != nil {
		t.Errorf("ParseTimelines(golden) = %+v, %v", tb, err)
	}
}

func TestParseIdentityRejects(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"version":2,"identity":"0123456789abcdef0123456789abcdef"}`,
		`{"version":1,"identity":"0123456789ABCDEF0123456789abcdef"}`, `{"version":1,"identity":"0123"}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef","extra":1}`,
		`{"version":1,"identity":"0123456789abcdef0123456789abcdef"} {}`, `{"version":1,"identity":"0123456789abcdef0123456789abcdef"}}`} {
		if id, err := ParseIdentity([]byte(in)); err == nil {
			t.Errorf("ParseIdentity(%q) = %+v, want an error", in, id)
		}
	}
	for _, in := range []string{`{"version":1,"spaces":{"a":{"timeline":0}}}`, `{"version":2,"spaces":{}}`,
		`{"version":1,"spaces":{"../x":{"timeline":1}}}`, `{"version":1,"spaces":{},"x":1}`} {
		if tl, err := ParseTimelines([]byte(in)); err == nil {
			t.Errorf("ParseTimelines(%q) = %+v, want an error", in, tl)
		}
	}
}

// TestEnsureIdentity: created once, kept, the same for concurrent callers;
// ReadIdentity of a dir without one names the file and the command.
func TestEnsureIdentity(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MetadataName), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIdentity(dir); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("ReadIdentity of a fresh dir: %v", err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, _, err := EnsureIdentity(dir)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id.Identity
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || ValidIdentity(id) != nil {
			t.Fatalf("identities differ or invalid: %v", ids)
		}
	}
	id, created, err := EnsureIdentity(dir)
	if err != nil || created || id.Identity != ids[0] {
		t.Fatalf("second EnsureIdentity = %+v, %v, %v", id, created, err)
	}
	if _, _, err := EnsureIdentity(t.TempDir()); err == nil {
		t.Fatal("EnsureIdentity of an empty dir (not a data dir) succeeded")
	}
	tl, err := ReadTimelines(dir)
	if err != nil || tl.Of("s") != 1 {
		t.Fatalf("ReadTimelines without a file = %+v, %v", tl, err)
	}
	tl.Set("s", 4)
	if err := WriteTimelines(dir, tl); err != nil {
		t.Fatal(err)
	}
	if tl, err = ReadTimelines(dir); err != nil || tl.Of("s") != 4 {
		t.Fatalf("ReadTimelines = %+v, %v", tl, err)
	}
}

// FuzzParseIdentity: never panics; what it accepts encodes to bytes it
// accepts again with the same value.
func FuzzParseIdentity(f *testing.F) {
	g, _ := os.ReadFile("testdata/golden/identity.json")
	f.Add(g)
	f.Add([]byte(`{"version":1,"identity":"0123456789abcdef0123456789abcdef"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentity(b)
		if err != nil {
			return
		}
		back, err := ParseIdentity(EncodeIdentity(id))
		if err != nil || !back.Created.Equal(id.Created) || back.Identity != id.Identity || back.Host != id.Host || back.DataDir != id.DataDir {
			t.Fatalf("round trip of %+v: %+v, %v", id, back, err)
		}
	})
}

// FuzzParseTimelines: never panics; stable encoding of what it accepts.
func FuzzParseTimelines(f *testing.F) {
	g, _ := os.ReadFile("testdata/golden/timelines.json")
	f.Add(g)
	f.Add([]byte(`{"version":1,"spaces":{"a":{"timeline":1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tl, err := ParseTimelines(b)
		if err != nil {
			return
		}
		enc := EncodeTimelines(tl)
		back, err := ParseTimelines(enc)
		if err != nil || !bytes.Equal(EncodeTimelines(back), enc) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}
