package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"runtime/trace"
	"strings"
	"time"

	"memento/chunk"
	"memento/repo"
	"memento/repo/restore"
)

// Level is how deep `memento verify` looks. Each level includes the ones
// below it, and each reads more of the repository:
//
//	L1 manifest:  signature, structure, sizes, every tree read and every chunk
//	              in the index, every pack present with the size the index says
//	L2 data:      every pack the snapshot references read once, every chunk
//	              decrypted and checked against its keyed BLAKE3, every file's
//	              BLAKE3 recomputed from its chunks in order; for a space
//	              snapshot also the archived WAL segments that extend its
//	              point-in-time range (chunks only the archive holds)
//	L3 structure: L2 plus the Engram layout of a space snapshot: tiers, WAL
//	              magic, CRC32C and sequence chain of every segment, and the
//	              checkpoint within the WAL range
//	L4 recovery:  restore into a temporary directory (which verifies every
//	              byte), L3's checks on the restored files, WAL replay to the
//	              state digest recorded at backup time, and query checks
type Level int

// Verification levels.
const (
	L1 Level = 1 + iota
	L2
	L3
	L4
)

// ParseLevel accepts "L2", "l2" or "2".
func ParseLevel(s string) (Level, error) {
	t := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "L")
	if len(t) == 1 && t[0] >= '1' && t[0] <= '4' {
		return Level(t[0] - '0'), nil
	}
	return 0, fmt.Errorf("verification level %q: want L1, L2, L3 or L4", s)
}

func (l Level) String() string {
	if l < L1 || l > L4 {
		return fmt.Sprintf("L?%d", int(l))
	}
	return fmt.Sprintf("L%d", int(l))
}

// MarshalText writes a level as "L2" in JSON.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads "L2".
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// VerifiedLevels returns, per snapshot ID, the highest level of a passed
// verification in recs (the audit trail, oldest first), which answers
// "latest verified backup" without reading any data. A failed verification
// clears what earlier passes proved: damage found later wins.
func VerifiedLevels(recs []repo.AuditRecord) map[string]Level {
	return verifiedLevels(recs, func(id string) string { return id })
}

// SnapshotLevels is VerifiedLevels for the snapshots sns, keyed by their
// IDs, with a retag followed: `memento tag` rewrites a snapshot under a new
// ID with an "original:<first ID>" tag but the same tree and data, so what
// verify proved of the original (or of any of its retagged versions) holds
// for it. Every reader of verification state (snapshots --verified, info,
// forget's newest-verified protection) asks here.
func SnapshotLevels(recs []repo.AuditRecord, sns []*repo.Snapshot) map[string]Level {
	content := map[string]string{} // snapshot ID -> the ID its content was first written under
	for _, sn := range sns {
		if o := sn.Original(); o != "" {
			content[sn.ID.String()] = o
		}
	}
	byContent := verifiedLevels(recs, func(id string) string {
		if o, ok := content[id]; ok {
			return o
		}
		return id
	})
	out := map[string]Level{}
	for _, sn := range sns {
		id := sn.ID.String()
		k := id
		if o, ok := content[id]; ok {
			k = o
		}
		if l, ok := byContent[k]; ok {
			out[id] = l
		}
	}
	return out
}

// verifiedLevels folds the verify records of recs per key(snapshot ID).
func verifiedLevels(recs []repo.AuditRecord, key func(string) string) map[string]Level {
	out := map[string]Level{}
	for _, rec := range recs {
		if rec.Command != "verify" || rec.Snapshot == "" {
			continue
		}
		k := key(rec.Snapshot)
		if rec.Result != repo.AuditOK {
			delete(out, k)
			continue
		}
		l, err := ParseLevel(rec.Level)
		if err != nil {
			continue
		}
		if rec.Subset != "" && l > L1 {
			l = L1 // a subset read proves the manifest, not all the data
		}
		if l > out[k] {
			out[k] = l
		}
	}
	return out
}

// Finding is one thing that failed verification: at which level it was
// found, what (a manifest, pack, blob, file, WAL segment) and what is wrong.
type Finding struct {
	Level   Level  `json:"level"`
	What    string `json:"what"`
	Message string `json:"message"`
}

func (f Finding) String() string { return fmt.Sprintf("%s %s: %s", f.Level, f.What, f.Message) }

// Verdict is the result of verifying one snapshot. Passed is true only when
// every check of every level up to Level held (Findings is empty).
type Verdict struct {
	Snapshot string             `json:"snapshot"`
	Space    string             `json:"space,omitempty"`
	Time     time.Time          `json:"time"`
	Level    Level              `json:"level"`
	Subset   string             `json:"subset,omitempty"`
	Passed   bool               `json:"passed"`
	Findings []Finding          `json:"findings"`
	Notes    []string           `json:"notes,omitempty"` // figures and observations that are not failures
	Figures  map[string]float64 `json:"figures"`
	Query    *QueryReport       `json:"query,omitempty"` // L4
	Seconds  float64            `json:"seconds"`
	dropped  int
}

// maxFindings bounds the findings kept per snapshot: a pack lost from a big
// snapshot would otherwise print one line per chunk.
const maxFindings = 200

// Short is the snapshot's 8-digit ID.
func (v *Verdict) Short() string {
	if len(v.Snapshot) >= 8 {
		return v.Snapshot[:8]
	}
	return v.Snapshot
}

func (v *Verdict) fail(l Level, what, format string, args ...any) {
	if len(v.Findings) >= maxFindings {
		v.dropped++
		return
	}
	// An error that names what failed itself ("pack 1a2b3c4d: ...") is not
	// prefixed by it twice when printed as "What: Message".
	msg := strings.TrimPrefix(fmt.Sprintf(format, args...), what+": ")
	v.Findings = append(v.Findings, Finding{Level: l, What: what, Message: msg})
}

func (v *Verdict) note(format string, args ...any) {
	v.Notes = append(v.Notes, fmt.Sprintf(format, args...))
}

// FirstLevel returns the lowest level at which a finding was made (0: none).
func (v *Verdict) FirstLevel() Level {
	var min Level
	for _, f := range v.Findings {
		if min == 0 || f.Level < min {
			min = f.Level
		}
	}
	return min
}

// VerifyOptions say how deep and how much to verify.
type VerifyOptions struct {
	Level Level
	// Subset, at L2, reads only one part of the packs (see Subset).
	Subset Subset
	// Workers decrypt and hash packs in parallel (default GOMAXPROCS).
	Workers int
	// TempDir is where L4 restores (default os.TempDir()); it is removed after.
	TempDir string
	// Samples is how many ids L4 looks up in the replayed state (default 100).
	Samples int
	// BufferBytes bounds the chunk plaintexts L2 holds for files whose chunks
	// arrive out of order (default 64 MiB); beyond it chunks are dropped and
	// read again later, which costs a second read but never memory.
	BufferBytes int64
	// Progress counts bytes read, for a progress bar.
	Progress *repo.Progress
}

func (o *VerifyOptions) defaults() {
	if o.Level == 0 {
		o.Level = L1
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Samples <= 0 {
		o.Samples = 100
	}
	if o.BufferBytes <= 0 {
		o.BufferBytes = 64 << 20
	}
	if o.Progress == nil {
		o.Progress = &repo.Progress{}
	}
}

// Verifier holds what is shared by the verification of several snapshots:
// the listing of the packs that really exist, and the pack sizes the local
// index believes in. Each level reads through its own field: NewVerifier
// sets r (L1); VerifySnapshots sets the deeper levels' too.
type Verifier struct {
	r         manifestRepo // L1
	blobs     blobStreamer // L2, L3
	wal       walRepo      // the archived WAL, L2 and up
	restore   restoreFunc  // L4
	opts      VerifyOptions
	packSizes map[[32]byte]int64 // from listing data/
	indexed   map[[32]byte]int64 // pack sizes per the index
	// listed is closed once packSizes and indexed are complete, with
	// listErr (nil: they are complete from the start).
	listed  chan struct{}
	listErr error
}

// NewVerifier starts listing the packs of the repository and reading the
// pack sizes of the local index, once for all the snapshots it verifies;
// Manifest waits for them only where it compares them, so the listing (a
// directory read per pack prefix, slow with a cold cache) overlaps the
// first snapshot's tree walk. check uses it with Manifest for its L1 walk
// of every snapshot. It takes only what L1 reads (manifestRepo: Backend,
// Index, LoadTree). A listing that fails is Manifest's error.
func NewVerifier(ctx context.Context, r manifestRepo, opts VerifyOptions) (*Verifier, error) {
	opts.defaults()
	v := &Verifier{r: r, opts: opts, packSizes: map[[32]byte]int64{}, indexed: map[[32]byte]int64{}, listed: make(chan struct{})}
	go func() {
		defer close(v.listed)
		v.listErr = v.listPacks(ctx)
	}()
	return v, nil
}

// listPacks fills packSizes and indexed.
func (v *Verifier) listPacks(ctx context.Context) error {
	err := v.r.Backend().List(ctx, repo.DirData, func(name string, size int64) error {
		v.packSizes[repo.NameHash(name)] = size
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("list packs: %w", err)
	}
	packs, err := v.r.Index().Packs()
	if err != nil {
		return fmt.Errorf("local index %s: %w", v.r.Index().Path(), err)
	}
	for _, p := range packs {
		v.indexed[p.ID] = p.Size
	}
	return nil
}

// packsListed waits until packSizes and indexed are complete.
func (v *Verifier) packsListed(ctx context.Context) error {
	if v.listed == nil {
		return nil
	}
	select {
	case <-v.listed:
		return v.listErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// VerifySnapshots verifies each snapshot to opts.Level and returns one
// verdict per snapshot, in order. Damage is reported in the verdicts, never
// as an error: the error is for being unable to verify at all (context
// cancelled, the repository unreachable).
func VerifySnapshots(ctx context.Context, r Repository, ids []chunk.ID, opts VerifyOptions) ([]*Verdict, error) {
	if opts.Subset.Of > 0 && opts.Level != L2 {
		return nil, fmt.Errorf("--subset reads part of the packs and applies to L2 only (L3 and L4 need every byte)")
	}
	lock, err := r.Lock(ctx, false, "verify")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	ctx = lock.Context() // cancelled if the lock is lost
	v, err := NewVerifier(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	v.blobs, v.wal = r, r
	v.restore = func(ctx context.Context, sn *repo.Snapshot, target string, opts restore.RestoreOptions) (*restore.RestoreResult, error) {
		return restore.Restore(ctx, r, sn, target, opts)
	}
	if opts.Level == L2 && len(ids) > 1 {
		return v.verifyRelay(ctx, r, ids)
	}
	out := make([]*Verdict, 0, len(ids))
	for _, id := range ids {
		vd, err := v.verify(ctx, r, id, nil)
		if err != nil {
			return out, err
		}
		out = append(out, vd)
	}
	return out, nil
}

// verify runs every level up to the requested one on one snapshot; rl is
// its place in a relay of L2 verifications (verifyRelay), or nil.
func (v *Verifier) verify(ctx context.Context, r Repository, id chunk.ID, rl *relay) (*Verdict, error) {
	start := time.Now()
	vd := &Verdict{Snapshot: id.String(), Level: v.opts.Level, Figures: map[string]float64{}}
	if v.opts.Subset.Of > 0 {
		vd.Subset = v.opts.Subset.String()
	}
	defer func() {
		if vd.dropped > 0 {
			vd.Findings = append(vd.Findings, Finding{Level: vd.FirstLevel(), What: "snapshot " + vd.Short(),
				Message: fmt.Sprintf("%d more findings not shown", vd.dropped)})
		}
		vd.Passed = len(vd.Findings) == 0
		vd.Seconds = time.Since(start).Seconds()
	}()
	sn, err := r.LoadSnapshotFile(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		vd.fail(L1, "manifest "+id.Short(), "%v", err)
		return vd, nil
	}
	vd.Space, vd.Time = sn.Space, sn.Time
	region := trace.StartRegion(ctx, "verify L1") // MEMENTO_TRACE shows where a verification waits
	w, err := v.Manifest(ctx, sn, vd)
	region.End()
	if err != nil {
		return nil, err
	}
	w.relay = rl
	vd.Figures["l1_seconds"] = time.Since(start).Seconds()
	switch {
	case v.opts.Level == L2:
		err = v.data(ctx, w, vd, nil)
	case v.opts.Level == L3:
		err = v.structure(ctx, w, vd)
	case v.opts.Level == L4:
		err = v.recovery(ctx, w, vd)
	}
	if err == nil && v.opts.Level >= L2 {
		err = v.walArchive(ctx, sn, vd)
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		vd.fail(v.opts.Level, "snapshot "+id.Short(), "%v", err)
	}
	return vd, nil
}
