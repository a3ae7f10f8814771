package engram

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lowEntropy is n bytes of text-like content (what tier payloads compress like).
func lowEntropy(n int) []byte {
	return []byte(strings.Repeat("memory 42 about the weather, ", n/29+1))[:n]
}

// tierSpace writes a space whose tiers look like Engram's.
func tierSpace(t testing.TB, dir, space string) {
	sd := SpaceDir(dir, space)
	mt := append([]byte(HotMagic), lowEntropy(5000)...)
	writeTestFile(t, filepath.Join(sd, HotName, HotMemtable), mt)
	writeTestFile(t, filepath.Join(sd, HotName, HotStats), []byte(`{"sequence":5,"entries":5}`))
	writeTestFile(t, filepath.Join(sd, HotName, HotRecent), []byte(`{"ids":["a"]}`))
	warm := make([]byte, 100*PageSize)
	for i := 0; i < 100; i++ {
		if i%7 == 3 {
			continue // a free page
		}
		p := warm[i*PageSize:]
		copy(p, WarmPageMagic)
		binary.LittleEndian.PutUint32(p[4:], uint32(i))
		copy(p[24:], lowEntropy(3000))
	}
	writeTestFile(t, filepath.Join(sd, WarmName, WarmFileName), warm)
	for i, n := range []int{70 << 10, 200} {
		seg := append([]byte(ColdMagic), 1, 0)
		seg = append(seg, lowEntropy(n)...)
		seg = append(seg, ColdMagic...)
		writeTestFile(t, filepath.Join(sd, ColdName, "seg-00000"+string(rune('1'+i))+ColdSuffix), seg)
	}
	writeTestFile(t, filepath.Join(sd, ColdName, "seg-000003.col.tmp"), randomBytes(1, 9000)) // in progress: skipped
	writeTestFile(t, filepath.Join(sd, WarmName, "notes.txt"), lowEntropy(9000))
}

// Tiers that look like Engram's pass; the same files overwritten with
// random bytes (ransomware encrypting in place) are each named, with why.
func TestCheckTiers(t *testing.T) {
	dir := t.TempDir()
	tierSpace(t, dir, "s1")
	probs, err := CheckTiers(dir, "s1")
	if err != nil || len(probs) != 0 {
		t.Fatalf("intact tiers: %v %v", probs, err)
	}
	// A flipped byte inside a page, a missing tier: no problem.
	sd := SpaceDir(dir, "s1")
	warm := filepath.Join(sd, WarmName, WarmFileName)
	b, _ := os.ReadFile(warm)
	b[5*PageSize+100] ^= 0xff
	writeTestFile(t, warm, b)
	if err := os.RemoveAll(filepath.Join(sd, HotName)); err != nil {
		t.Fatal(err)
	}
	if probs, err := CheckTiers(dir, "s1"); err != nil || len(probs) != 0 {
		t.Fatalf("after an in-page change and without hot/: %v %v", probs, err)
	}
	// Garbled in place.
	tierSpace(t, dir, "s1")
	var files []string
	err = filepath.WalkDir(sd, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		files = append(files, p)
		writeTestFile(t, p, randomBytes(uint64(len(files)), int(fi.Size())))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	probs, err = CheckTiers(dir, "s1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range probs {
		got[p.File] = p.Reason
	}
	want := map[string]string{
		"spaces/s1/hot/memtable.bin":    "bad magic",
		"spaces/s1/hot/stats.json":      "not JSON",
		"spaces/s1/hot/recent_ids.json": "not JSON",
		"spaces/s1/warm/warm_tier.dat":  "page 0 (offset 0) is neither free nor a page",
		"spaces/s1/warm/notes.txt":      "looks random or encrypted",
		"spaces/s1/cold/seg-000001.col": "bad header",
		"spaces/s1/cold/seg-000002.col": "bad header",
	}
	if len(got) != len(want) {
		t.Fatalf("problems %v, want %d", probs, len(want))
	}
	for f, w := range want {
		if !strings.HasPrefix(got[f], w) {
			t.Errorf("%s: %q, want %q...", f, got[f], w)
		}
	}
	// Encrypted with the headers kept: the warm pages' numbers and the cold
	// trailer still give it away.
	tierSpace(t, dir, "s1")
	b, _ = os.ReadFile(warm)
	copy(b[PageSize:], randomBytes(9, len(b)-PageSize))
	writeTestFile(t, warm, b)
	cold := filepath.Join(sd, ColdName, "seg-000001.col")
	b, _ = os.ReadFile(cold)
	copy(b[6:], randomBytes(10, len(b)-6))
	writeTestFile(t, cold, b)
	probs, _ = CheckTiers(dir, "s1")
	if len(probs) != 2 || !strings.Contains(probs[0].Reason, "bad trailer") || !strings.Contains(probs[1].Reason, "is neither free nor a page") {
		t.Fatalf("headers kept: %v", probs)
	}
}

func TestEntropy(t *testing.T) {
	if e := Entropy(randomBytes(3, 4096)); e < randomEntropy {
		t.Errorf("4 KiB of random bytes: %.3f bits, below the %.1f threshold", e, randomEntropy)
	}
	if e := Entropy(lowEntropy(1 << 16)); e > 5 {
		t.Errorf("text: %.3f bits", e)
	}
	if e := Entropy(make([]byte, 100)); e != 0 {
		t.Errorf("zeros: %v", e)
	}
}

// FuzzCheckTiers: whatever bytes the tier files hold, CheckTiers answers
// (a problem or none) without panicking.
func FuzzCheckTiers(f *testing.F) {
	f.Add([]byte("EWP1\x00\x00\x00\x00"), uint8(0))
	f.Add([]byte("ECOL\x01\x00ECOL"), uint8(1))
	f.Add([]byte("EHOT"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		dir := t.TempDir()
		sd := SpaceDir(dir, "s")
		var p string
		switch kind % 4 {
		case 0:
			p = filepath.Join(sd, WarmName, WarmFileName)
		case 1:
			p = filepath.Join(sd, ColdName, "seg-1.col")
		case 2:
			p = filepath.Join(sd, HotName, HotMemtable)
		default:
			p = filepath.Join(sd, HotName, "x.json")
		}
		writeTestFile(t, p, data)
		if _, err := CheckTiers(dir, "s"); err != nil {
			t.Fatal(err)
		}
	})
}
