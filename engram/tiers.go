package engram

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// The tiers' file formats begin (and, for cold segments, end) with a magic
// (docs/engram-format.md, "Tier files"). CheckTiers relies on them to tell
// a data dir that ransomware encrypted in place from one that changed.
const (
	HotMagic      = "EHOT" // hot/memtable.bin starts with it
	WarmPageMagic = "EWP1" // every used warm page starts with it, then its page number (u32)
	ColdMagic     = "ECOL" // a cold segment starts and ends with it; u16 version 1 follows the first
	ColdSuffix    = ".col" // a cold segment's name ends with it
)

// TierProblem is a tier file that does not look like what Engram writes.
type TierProblem struct {
	File   string `json:"file"` // relative to the data dir, e.g. spaces/a/cold/seg-000001.col
	Reason string `json:"reason"`
}

func (p TierProblem) String() string { return p.File + ": " + p.Reason }

// Sampling bounds of CheckTiers: it reads a few pages of each file, not the
// data dir, so that it costs next to nothing beside a backup.
const (
	warmPagesSampled = 64
	entropySample    = 64 << 10
	// randomEntropy is the Shannon entropy (bits per byte) above which a
	// sample of at least minEntropySample bytes is taken for random or
	// encrypted bytes. Engram's tier files, float32 embeddings and text,
	// measure 6.4 to 7.4 (engram-sim, both profiles); 4 KiB of random
	// bytes measure about 7.95.
	randomEntropy    = 7.9
	minEntropySample = 4096
	// tierChecksAtOnce is how many of a space's files CheckTiers reads at
	// once.
	tierChecksAtOnce = 8
)

// CheckTiers makes quick structural checks of a space's tier files, the
// ones ransomware that encrypts a data dir in place garbles beyond what a
// WAL check sees: hot/memtable.bin starts with HotMagic and recent_ids.json
// and stats.json are JSON; the warm page file is whole pages, and a sample of up to 64
// of them, first and last included, are free (all zero) or start with
// WarmPageMagic and their own page number; a cold segment starts with
// ColdMagic and version 1 and ends with ColdMagic; any other file in a tier
// directory is not random-looking (entropy of its first 64 KiB below 7.9
// bits per byte). Missing tiers are fine (a space that never checkpointed);
// *.tmp files are skipped. It returns the files that fail, sorted; the
// error is for files it could not read.
func CheckTiers(dataDir, space string) ([]TierProblem, error) {
	sd := SpaceDir(dataDir, space)
	var out []TierProblem
	add := func(p, format string, args ...any) {
		rel, err := filepath.Rel(dataDir, p)
		if err != nil {
			rel = p
		}
		out = append(out, TierProblem{File: filepath.ToSlash(rel), Reason: fmt.Sprintf(format, args...)})
	}
	type task struct {
		path string
		fn   func(string) (string, error)
		why  string
		err  error
	}
	var tasks []*task
	for _, tier := range []string{HotName, WarmName, ColdName} {
		dir := filepath.Join(sd, tier)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("space %s: %s tier: %w", space, tier, err)
		}
		for _, e := range ents {
			name := e.Name()
			if !e.Type().IsRegular() || strings.HasSuffix(name, ".tmp") || strings.HasPrefix(name, ".") {
				continue
			}
			t := &task{path: filepath.Join(dir, name)}
			switch {
			case tier == HotName && name == HotMemtable:
				t.fn = func(p string) (string, error) { return checkMagicAt(p, 0, HotMagic) }
			case tier == HotName && (name == HotRecent || name == HotStats):
				t.fn = checkJSON
			case tier == WarmName && name == WarmFileName:
				t.fn = checkWarm
			case tier == ColdName && strings.HasSuffix(name, ColdSuffix):
				t.fn = checkCold
			default:
				t.fn = checkNotRandom
			}
			tasks = append(tasks, t)
		}
	}
	// The files are checked tierChecksAtOnce at a time: each is a few
	// small reads, and on a cold page cache one after the other they were
	// as many waits for the disk in turn (docs/benchmarks.md, "Issue 18,
	// session 24: the unchanged re-backup of 16 spaces").
	var wg sync.WaitGroup
	sem := make(chan struct{}, tierChecksAtOnce)
	for _, t := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t.why, t.err = t.fn(t.path)
		})
	}
	wg.Wait()
	for _, t := range tasks {
		if errors.Is(t.err, fs.ErrNotExist) {
			continue // replaced or removed meanwhile
		}
		if t.err != nil {
			return nil, fmt.Errorf("space %s: %w", space, t.err)
		}
		if t.why != "" {
			add(t.path, "%s", t.why)
		}
	}
	slices.SortFunc(out, func(a, b TierProblem) int { return strings.Compare(a.File, b.File) })
	return out, nil
}

func readAt(p string, off int64, n int) ([]byte, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if off < 0 {
		off = max(fi.Size()+off, 0)
	}
	// At most what the file holds past off: checkJSON asks for up to 1 MiB
	// of files that are a few hundred bytes.
	b := make([]byte, max(0, min(int64(n), fi.Size()-off)))
	m, err := f.ReadAt(b, off)
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	return b[:m], fi.Size(), nil
}

func checkMagicAt(p string, off int64, magic string) (string, error) {
	b, size, err := readAt(p, off, len(magic))
	if err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil // an empty file is what a crash leaves, not an encryption
	}
	if string(b) != magic {
		return fmt.Sprintf("bad magic %q at offset %d (want %q)", b, off, magic), nil
	}
	return "", nil
}

func checkJSON(p string) (string, error) {
	b, _, err := readAt(p, 0, 1<<20)
	if err != nil {
		return "", err
	}
	if len(b) == 0 || len(b) == 1<<20 {
		return "", nil // empty, or too large to judge here
	}
	if !json.Valid(b) {
		return "not JSON", nil
	}
	return "", nil
}

func checkWarm(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := fi.Size()
	if size%PageSize != 0 {
		return fmt.Sprintf("size %d is not a whole number of %d-byte pages", size, PageSize), nil
	}
	pages := size / PageSize
	if pages == 0 {
		return "", nil
	}
	step := max(pages/warmPagesSampled, 1)
	// The sample's pages are asked of the disk all at once before the
	// first is read: read one by one, a cold file cost 64 waits for the
	// disk in turn, the largest wait of an unchanged backup of 16 spaces
	// (docs/benchmarks.md, "Issue 18, session 24: the unchanged re-backup
	// of 16 spaces").
	var sample []int64
	for i := int64(0); i < pages; i += step {
		sample = append(sample, i*PageSize)
	}
	sample = append(sample, (pages-1)*PageSize)
	prefetchPages(f, sample, PageSize)
	page := make([]byte, PageSize)
	check := func(i int64) (string, error) {
		if _, err := f.ReadAt(page, i*PageSize); err != nil {
			return "", err
		}
		if string(page[:4]) == WarmPageMagic && int64(binary.LittleEndian.Uint32(page[4:8])) == i {
			return "", nil
		}
		if !slices.ContainsFunc(page, func(c byte) bool { return c != 0 }) {
			return "", nil // a free page
		}
		return fmt.Sprintf("page %d (offset %d) is neither free nor a page (magic %q, want %q and its page number)", i, i*PageSize, page[:4], WarmPageMagic), nil
	}
	for i := int64(0); i < pages; i += step {
		if why, err := check(i); why != "" || err != nil {
			return why, err
		}
	}
	return check(pages - 1)
}

func checkCold(p string) (string, error) {
	head, size, err := readAt(p, 0, 6)
	if err != nil {
		return "", err
	}
	if size == 0 {
		return "", nil
	}
	if len(head) < 6 || string(head[:4]) != ColdMagic || binary.LittleEndian.Uint16(head[4:6]) != 1 {
		return fmt.Sprintf("bad header %q (want %q and version 1)", head, ColdMagic), nil
	}
	tail, _, err := readAt(p, -int64(len(ColdMagic)), len(ColdMagic))
	if err != nil {
		return "", err
	}
	if string(tail) != ColdMagic {
		return fmt.Sprintf("bad trailer %q at its end (want %q)", tail, ColdMagic), nil
	}
	return "", nil
}

func checkNotRandom(p string) (string, error) {
	b, _, err := readAt(p, 0, entropySample)
	if err != nil {
		return "", err
	}
	if len(b) < minEntropySample {
		return "", nil
	}
	if e := Entropy(b); e >= randomEntropy {
		return fmt.Sprintf("looks random or encrypted (%.2f bits of entropy per byte in its first %d bytes)", e, len(b)), nil
	}
	return "", nil
}

// Entropy is the Shannon entropy of b in bits per byte (0 to 8).
func Entropy(b []byte) float64 {
	var n [256]int
	for _, c := range b {
		n[c]++
	}
	var e float64
	for _, k := range n {
		if k > 0 {
			q := float64(k) / float64(len(b))
			e -= q * math.Log2(q)
		}
	}
	return e
}
