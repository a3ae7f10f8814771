package repo

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"slices"

	"strconv"
	"strings"
	"sync"
	"time"

	"memento/chunk"
	"memento/engram"
	"memento/index"
)

// LayoutFull is Manifest.Layout of a snapshot whose tree holds each path
// by its absolute name (/srv/a/x is srv/a/x), as restic does. A path
// snapshot without a layout (the first layout) holds each path at the top
// level by its last element.
const LayoutFull = "full"

// ManifestVersion is the newest snapshot manifest format this binary
// writes (and the newest it reads). A manifest is written as version 1
// unless it uses a field version 2 added (manifestVersionFor): the
// signature is over a re-encoding, so a binary that does not know a field
// must refuse the manifest as a newer format, not as a bad signature.
const ManifestVersion = 2

// manifestVersionFor is the oldest manifest version that holds m: 2 for
// a full-path layout or the special/excluded summary figures, else 1.
func manifestVersionFor(m *Manifest) int {
	if m.Layout != "" || m.Summary.Special != 0 || m.Summary.Excluded != 0 {
		return 2
	}
	return 1
}

// Manifest describes one snapshot. It is signed with the repository's Ed25519
// key over its JSON without the signature, and sealed like every metadata file:
// the seal proves it came from someone with the key, the signature lets a
// holder of only the public key (an auditor, a replica) check it too.
type Manifest struct {
	Version   int         `json:"version"`
	Time      time.Time   `json:"time"`
	Host      string      `json:"host"`
	Username  string      `json:"username,omitempty"`
	Tags      []string    `json:"tags,omitempty"`
	Space     string      `json:"space,omitempty"`
	Paths     []string    `json:"paths"`
	Layout    string      `json:"layout,omitempty"` // a path snapshot's: "" (the first layout) or LayoutFull
	Parent    string      `json:"parent,omitempty"`
	Root      chunk.ID    `json:"root"`
	Summary   Summary     `json:"summary"`
	Engram    *EngramInfo `json:"engram,omitempty"`
	Signature []byte      `json:"signature,omitempty"`
}

// Summary holds a backup's figures, kept in the manifest so that `snapshots`
// can answer without reading any data.
type Summary struct {
	Files          uint64  `json:"files"`
	Dirs           uint64  `json:"dirs"`
	Symlinks       uint64  `json:"symlinks"`
	Special        uint64  `json:"special,omitempty"` // FIFOs, sockets and device nodes
	Bytes          uint64  `json:"bytes"`
	UnchangedFiles uint64  `json:"unchanged_files"`
	Chunks         uint64  `json:"chunks"`
	NewChunks      uint64  `json:"new_chunks"`
	NewBytes       uint64  `json:"new_bytes"`    // raw bytes of chunks this backup added
	StoredBytes    uint64  `json:"stored_bytes"` // bytes of packs this backup wrote
	Seconds        float64 `json:"seconds"`
	Excluded       uint64  `json:"excluded,omitempty"` // entries left out by --exclude (their contents not counted)
}

// WALPosition is an entry of the Engram WAL.
type WALPosition struct {
	Seq         uint64 `json:"seq"`
	TimestampNS int64  `json:"timestamp_ns"`
}

// EngramInfo records what a space snapshot holds of the database's history:
// tiers at Checkpoint plus the WAL from WALFirst to WALEnd. StateDigest is the
// walreplay state digest at WALEnd, so verification has something to prove.
type EngramInfo struct {
	Checkpoint  WALPosition `json:"checkpoint"`
	WALStart    WALPosition `json:"wal_start"` // last entry before the tiers were read
	WALFirst    WALPosition `json:"wal_first"`
	WALEnd      WALPosition `json:"wal_end"`
	StateDigest string      `json:"state_digest,omitempty"`
	// StateDigestKind names the definition StateDigest follows: empty is
	// version 1 (BLAKE3 over the live records in id order), "lthash16"
	// version 2 (docs/engram-format.md "State digest"), which only
	// repositories of format 5 record (Config.StateDigestKind).
	StateDigestKind string `json:"state_digest_kind,omitempty"`
	Segments        int    `json:"segments"`
	// WALFingerprint identifies the segments (names, sizes, inodes, mtimes, ctimes)
	// the digest was computed over, so the next backup can tell the WAL is
	// unchanged. omitempty, as every field added after version 1 must be:
	// the signature covers the re-encoded manifest (repository-format.md).
	WALFingerprint string `json:"wal_fingerprint,omitempty"`
	// Damage is what the backup found damaged in the space, one description
	// each (segment and offset, or the checkpoint). It is stored in the
	// manifest as tags (DamageTagPrefix), which every binary reads: a new
	// field would fail the signature check of binaries that do not know it.
	Damage []string `json:"-"`
}

// DamageTagPrefix starts the tags that mark a snapshot whose source was
// damaged when it was taken (repository-format.md, "Damage marks"). The
// backup saved every byte as it was; the text after the prefix says what is
// damaged and where. Users cannot give such a tag.
const DamageTagPrefix = "damaged:"

// IdentityTagPrefix and TimelineTagPrefix start the tags that record the
// database identity and the timeline a space snapshot was taken on
// (repository-format.md, "Identity and timeline tags"). Tags, not fields: a
// new manifest field would fail the signature check of older binaries.
// Users cannot give such tags.
const (
	IdentityTagPrefix = "identity:"
	TimelineTagPrefix = "timeline:"
)

// Identity returns the database identity the snapshot was taken of ("" for
// a snapshot without one: the legacy database).
func (m *Manifest) Identity() string {
	for _, t := range m.Tags {
		if id, ok := strings.CutPrefix(t, IdentityTagPrefix); ok {
			return id
		}
	}
	return ""
}

// Timeline returns the timeline the snapshot was taken on (1 without a tag).
func (m *Manifest) Timeline() uint32 {
	for _, t := range m.Tags {
		if v, ok := strings.CutPrefix(t, TimelineTagPrefix); ok {
			if n, err := strconv.ParseUint(v, 10, 32); err == nil && n >= 1 {
				return uint32(n)
			}
		}
	}
	return 1
}

// ReservedTag reports whether a user tag uses a prefix only memento writes.
func ReservedTag(t string) bool {
	return strings.HasPrefix(t, DamageTagPrefix) || strings.HasPrefix(t, IdentityTagPrefix) || strings.HasPrefix(t, TimelineTagPrefix) ||
		strings.HasPrefix(t, OriginalTagPrefix)
}

// Damage returns the damage marks of the snapshot, without the prefix; none
// for a snapshot whose source verified.
func (m *Manifest) Damage() []string {
	var out []string
	for _, t := range m.Tags {
		if d, ok := strings.CutPrefix(t, DamageTagPrefix); ok {
			out = append(out, strings.TrimSpace(d))
		}
	}
	return out
}

// WithDamage returns the tags of a manifest: the user's, then one mark per
// damage the Engram recorder found.
func WithDamage(tags []string, e *EngramInfo) []string {
	if e == nil || len(e.Damage) == 0 {
		return tags
	}
	out := slices.Clone(tags)
	for _, d := range e.Damage {
		out = append(out, DamageTagPrefix+" "+d)
	}
	return out
}

// Snapshot is a manifest together with its ID, the hash of its file.
type Snapshot struct {
	ID chunk.ID `json:"id"`
	Manifest
	// Followed lists, for a snapshot just made by Backup, the symlinks it
	// read as the directories they point to ("spaces/<id>/wal -> /disk2/wal");
	// it is not part of the manifest.
	Followed []string `json:"-"`
}

// ShortID is the first 8 hex digits of the ID, as shown to operators.
func (s *Snapshot) ShortID() string { return s.ID.Short() }

const (
	kindSnapshot    = "snapshot"
	signatureDomain = "memento manifest v1\x00"
)

func (m *Manifest) signedBytes() ([]byte, error) {
	c := *m
	c.Signature = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return append([]byte(signatureDomain), b...), nil
}

// SaveSnapshot signs and writes a manifest and adds it to the local catalog.
func (r *Repository) SaveSnapshot(ctx context.Context, m *Manifest) (*Snapshot, error) {
	// Before the manifest appears, its packs are retained as long as it
	// will be (S3 Object Lock; nothing to do elsewhere).
	ret, err := r.ExtendRetention(ctx, m.Space, m.Root)
	if err != nil {
		return nil, err
	}
	if ret != nil {
		level := slog.LevelDebug
		if ret.Extended > 0 {
			level = slog.LevelInfo
		}
		r.log.Log(ctx, level, "retention of the snapshot's packs", "packs", ret.Packs, "queried", ret.Queried, "extended", ret.Extended, "seconds", ret.Seconds)
	}
	m.Version = manifestVersionFor(m)
	msg, err := m.signedBytes()
	if err != nil {
		return nil, err
	}
	m.Signature = ed25519.Sign(r.signKey, msg)
	id, err := r.SaveFile(ctx, DirSnapshots, kindSnapshot, m)
	if err != nil {
		return nil, err
	}
	sn := &Snapshot{ID: id, Manifest: *m}
	if r.deferCatalogEntry(catalogEntry(sn)) {
		return sn, nil
	}
	if err := r.ix.PutSnapshots([]index.SnapshotEntry{catalogEntry(sn)}); err != nil {
		return sn, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	return sn, nil
}

// catalogBatch holds the catalog entries of the snapshots saved while a
// DeferCatalog is open.
type catalogBatch struct {
	mu      sync.Mutex
	open    int                   // DeferCatalogs not yet flushed
	pending []index.SnapshotEntry // saved snapshots the catalog lacks
}

// DeferCatalog puts the catalog entries of the snapshots saved from now on
// into the local index together, in one transaction when the returned flush
// is called (or earlier, when a read of the catalog needs them), instead of
// a write transaction each: `backup --all` of 16 spaces committed 16 times,
// two fdatasyncs each, one space's commit holding up the others' reads of
// the cache (docs/benchmarks.md, "Issue 18, session 24: the unchanged
// re-backup of 16 spaces"). The snapshot files are written and synced as
// before; only the cache's copy waits. A process that stops before flush
// leaves the catalog without them, which the next Open's Sync adds from the
// repository's snapshots/ (as for a snapshot another host saved). flush
// reports the cache's error, naming its file; it may be called more than
// once (the later calls do nothing).
func (r *Repository) DeferCatalog() (flush func() error) {
	r.catalog.mu.Lock()
	r.catalog.open++
	r.catalog.mu.Unlock()
	return sync.OnceValue(func() error {
		r.catalog.mu.Lock()
		r.catalog.open--
		r.catalog.mu.Unlock()
		return r.flushCatalog(func(index.SnapshotEntry) bool { return true })
	})
}

// deferCatalogEntry queues e when a DeferCatalog is open, and reports
// whether it did.
func (r *Repository) deferCatalogEntry(e index.SnapshotEntry) bool {
	r.catalog.mu.Lock()
	defer r.catalog.mu.Unlock()
	if r.catalog.open == 0 {
		return false
	}
	r.catalog.pending = append(r.catalog.pending, e)
	return true
}

// flushCatalog puts the queued entries into the local index in one
// transaction if any of them is one a reader needs (need), so that every
// read of the catalog in this process sees the snapshots it saved. It
// holds the batch's lock while it writes: a read waits for the entries it
// needs.
func (r *Repository) flushCatalog(need func(index.SnapshotEntry) bool) error {
	r.catalog.mu.Lock()
	defer r.catalog.mu.Unlock()
	if !slices.ContainsFunc(r.catalog.pending, need) {
		return nil
	}
	if err := r.ix.PutSnapshots(r.catalog.pending); err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	r.catalog.pending = nil
	return nil
}

// flushAllCatalog is flushCatalog of every queued entry, for the readers
// of the whole catalog.
func (r *Repository) flushAllCatalog() error {
	return r.flushCatalog(func(index.SnapshotEntry) bool { return true })
}

func catalogEntry(sn *Snapshot) index.SnapshotEntry {
	raw, _ := json.Marshal(sn.Manifest)
	return index.SnapshotEntry{ID: sn.ID.String(), Time: sn.Time, Space: sn.Space, Host: sn.Host, Tags: sn.Tags, Summary: raw}
}

// LoadSnapshotFile reads a manifest from the repository and checks its seal,
// signature and structure.
func (r *Repository) LoadSnapshotFile(ctx context.Context, id chunk.ID) (*Snapshot, error) {
	var m Manifest
	name := FileName(DirSnapshots, id)
	if err := r.LoadFile(ctx, name, kindSnapshot, &m); err != nil {
		return nil, err
	}
	if err := r.checkManifest(id, &m); err != nil {
		return nil, err
	}
	return &Snapshot{ID: id, Manifest: m}, nil
}

func (r *Repository) checkManifest(id chunk.ID, m *Manifest) error {
	what := "snapshot " + id.Short()
	if m.Version < 1 || m.Version > ManifestVersion {
		return fmt.Errorf("%s: %w: manifest version %d", what, ErrFormat, m.Version)
	}
	if m.Version < manifestVersionFor(m) || (m.Layout != "" && m.Layout != LayoutFull) || (m.Layout != "" && m.Space != "") {
		return fmt.Errorf("%s: %w: manifest version %d with layout %q", what, ErrFormat, m.Version, m.Layout)
	}
	msg, err := m.signedBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(r.cfg.SignPublicKey, msg, m.Signature) {
		return Corruptf(what, "signature does not verify with the repository's public key")
	}
	if m.Space != "" {
		if err := engram.ValidSpaceID(m.Space); err != nil {
			return Corruptf(what, "%v", err)
		}
	}
	return nil
}

// Snapshots lists all snapshots, oldest first, from the local catalog (kept in
// step with the repository at Open).
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	if err := r.flushAllCatalog(); err != nil {
		return nil, err
	}
	entries, err := r.ix.Snapshots()
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	return r.decodeEntries(entries)
}

// SnapshotsOf is Snapshots restricted to the snapshots of one space ("":
// the path backups). Only their manifests are decoded from the catalog: a
// backup picks its parent among them, a restore, a PITR plan or a check of
// one space reads them, and decoding every manifest of a repository that
// holds many spaces would cost more than the rest of the work (once per
// space in `restore --all`: docs/benchmarks.md, "Issue 18, session 27: one
// space's snapshots").
func (r *Repository) SnapshotsOf(ctx context.Context, space string) ([]*Snapshot, error) {
	if err := r.flushCatalog(func(e index.SnapshotEntry) bool { return e.Space == space }); err != nil {
		return nil, err
	}
	entries, err := r.ix.SpaceSnapshots(space)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	return r.decodeEntries(entries)
}

// decodeEntries decodes catalog entries (ordered by time, then ID) into
// snapshots in the same order.
func (r *Repository) decodeEntries(entries []index.SnapshotEntry) ([]*Snapshot, error) {
	out := make([]*Snapshot, 0, len(entries))
	for _, e := range entries {
		id, err := r.catalogID(e.ID)
		if err != nil {
			return nil, err
		}
		sn := &Snapshot{ID: id}
		if err := json.Unmarshal(e.Summary, &sn.Manifest); err != nil {
			return nil, fmt.Errorf("local index %s: snapshot %s: %w", r.ix.Path(), e.ID, err)
		}
		out = append(out, sn)
	}
	return out, nil
}

func (r *Repository) catalogID(s string) (chunk.ID, error) {
	id, err := chunk.ParseID(s)
	if err != nil {
		return chunk.ID{}, fmt.Errorf("local index %s: snapshot %q: %w", r.ix.Path(), s, err)
	}
	return id, nil
}

// SnapshotHeads is the catalog's entries without their manifests (IDs,
// times and spaces, ordered as Snapshots orders them): what counting the
// snapshots or resolving a reference takes.
func (r *Repository) SnapshotHeads(ctx context.Context) ([]index.SnapshotHead, error) {
	if err := r.flushAllCatalog(); err != nil {
		return nil, err
	}
	heads, err := r.ix.SnapshotHeads()
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	return heads, nil
}

// FindSnapshot resolves an ID or unique prefix (at least 4 hex digits), or
// "latest", to a verified snapshot read from the repository itself. Only
// the catalog's IDs and times are read to resolve it, no manifest.
func (r *Repository) FindSnapshot(ctx context.Context, ref string) (*Snapshot, error) {
	heads, err := r.SnapshotHeads(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]chunk.ID, len(heads))
	for i, h := range heads {
		if ids[i], err = r.catalogID(h.ID); err != nil {
			return nil, err
		}
	}
	var id chunk.ID
	if IsLatestRef(ref) {
		if len(ids) == 0 {
			return nil, errNoSnapshots
		}
		id = ids[len(ids)-1]
	} else if id, err = MatchSnapshotPrefix(ref, ids); err != nil {
		return nil, err
	}
	return r.LoadSnapshotFile(ctx, id)
}

// errNoSnapshots is what "latest" resolves to in an empty repository.
var errNoSnapshots = fmt.Errorf("snapshot latest: %w: the repository has no snapshots", ErrNotFound)

// NoSnapshotsError returns the error of "latest" in a repository without
// snapshots (it wraps ErrNotFound).
func NoSnapshotsError() error { return errNoSnapshots }

// IsLatestRef reports whether a snapshot reference names the newest snapshot
// ("latest", in any case).
func IsLatestRef(ref string) bool { return strings.EqualFold(ref, "latest") }

// MatchSnapshotPrefix resolves a snapshot ID or unique ID prefix (at least 4
// hex digits, any case) among ids. A malformed or ambiguous reference is an
// ErrInvalidRef error, one that matches nothing an ErrNotFound error; both
// name the reference. Every command that takes a snapshot reference resolves
// it here, so they agree on what a reference is.
func MatchSnapshotPrefix(ref string, ids []chunk.ID) (chunk.ID, error) {
	ref = strings.ToLower(ref)
	if len(ref) < 4 {
		return chunk.ID{}, fmt.Errorf("snapshot %q: %w: give at least 4 hex digits", ref, ErrInvalidRef)
	}
	if _, err := hex.DecodeString(ref[:len(ref)&^1]); err != nil {
		return chunk.ID{}, fmt.Errorf("snapshot %q: %w: not a hex ID", ref, ErrInvalidRef)
	}
	var match []chunk.ID
	for _, id := range ids {
		if strings.HasPrefix(id.String(), ref) && !slices.Contains(match, id) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return chunk.ID{}, fmt.Errorf("snapshot %s: %w", ref, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return chunk.ID{}, fmt.Errorf("snapshot %s: %w: prefix is ambiguous (%d snapshots match)", ref, ErrInvalidRef, len(match))
}

// LatestSnapshot returns the newest snapshot of a space, verified.
// Only the newest catalog entry of the space is decoded whole
// (index.LatestSnapshot), not every manifest of the space.
func (r *Repository) LatestSnapshot(ctx context.Context, space string) (*Snapshot, error) {
	if err := r.flushCatalog(func(e index.SnapshotEntry) bool { return e.Space == space }); err != nil {
		return nil, err
	}
	e, ok, err := r.ix.LatestSnapshot(space)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	if !ok {
		return nil, fmt.Errorf("space %s: %w: no snapshot of this space", space, ErrNotFound)
	}
	id, err := r.catalogID(e.ID)
	if err != nil {
		return nil, err
	}
	return r.LoadSnapshotFile(ctx, id)
}

// LatestSnapshotIDs returns the ID of the newest snapshot of each of
// spaces that has one, from one pass over the local catalog
// (index.LatestSnapshots): what LatestSnapshot looks up space by space,
// for a command that backs up many spaces. The caller verifies the one it
// uses (LoadSnapshotFile), as LatestSnapshot does.
func (r *Repository) LatestSnapshotIDs(spaces []string) (map[string]chunk.ID, error) {
	if err := r.flushCatalog(func(e index.SnapshotEntry) bool { return slices.Contains(spaces, e.Space) }); err != nil {
		return nil, err
	}
	latest, err := r.ix.LatestSnapshots(spaces)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	out := make(map[string]chunk.ID, len(latest))
	for sp, e := range latest {
		id, err := r.catalogID(e.ID)
		if err != nil {
			return nil, err
		}
		out[sp] = id
	}
	return out, nil
}

// LatestPerSpace returns the newest snapshot of every space, ordered by
// space ID, from the catalog (callers that act on one re-read it with
// FindSnapshot, which verifies the manifest). Snapshots of plain paths,
// which belong to no space, are not included.
func (r *Repository) LatestPerSpace(ctx context.Context) ([]*Snapshot, error) {
	heads, err := r.SnapshotHeads(ctx)
	if err != nil {
		return nil, err
	}
	var spaces []string
	for _, h := range heads {
		if h.Space != "" {
			spaces = append(spaces, h.Space)
		}
	}
	slices.Sort(spaces)
	spaces = slices.Compact(spaces)
	latest, err := r.ix.LatestSnapshots(spaces)
	if err != nil {
		return nil, fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	entries := make([]index.SnapshotEntry, 0, len(spaces))
	for _, sp := range spaces {
		if e, ok := latest[sp]; ok {
			entries = append(entries, e)
		}
	}
	return r.decodeEntries(entries)
}

// syncSnapshots brings the local catalog in step with snapshots/.
func (r *Repository) syncSnapshots(ctx context.Context) error {
	if err := r.flushAllCatalog(); err != nil {
		return err
	}
	have, err := r.ix.SnapshotIDs() // the keys only: every open runs this
	if err != nil {
		return fmt.Errorf("local index %s: %w", r.ix.Path(), err)
	}
	known := make(map[string]bool, len(have))
	for _, id := range have {
		known[id] = true
	}
	present := map[string]bool{}
	var add []index.SnapshotEntry
	err = r.be.List(ctx, DirSnapshots, func(name string, size int64) error {
		id := chunk.ID(NameHash(name))
		present[id.String()] = true
		if known[id.String()] {
			return nil
		}
		sn, err := r.LoadSnapshotFile(ctx, id)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				r.log.Warn("skipping damaged snapshot", "file", name, "err", err)
				return nil
			}
			if errors.Is(err, fs.ErrNotExist) {
				// Listed, then removed before it was read: another
				// process forgot it or replaced it (tag, rewrite).
				return nil
			}
			return err
		}
		add = append(add, catalogEntry(sn))
		return nil
	})
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(add) > 0 {
		if err := r.ix.PutSnapshots(add); err != nil {
			return err
		}
	}
	for id := range known {
		if !present[id] {
			if err := r.ix.DeleteSnapshot(id); err != nil {
				return err
			}
		}
	}
	return nil
}
