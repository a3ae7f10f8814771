package index

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SnapshotEntry is the catalog's view of one snapshot manifest: enough to
// list and pick snapshots without reading the repository. Summary is opaque
// to the index (repo decides what it holds).
type SnapshotEntry struct {
	ID      string          `json:"id"`
	Time    time.Time       `json:"time"`
	Space   string          `json:"space"`
	Host    string          `json:"host"`
	Tags    []string        `json:"tags,omitempty"`
	Summary json.RawMessage `json:"summary,omitempty"`
}

// PutSnapshots adds or replaces catalog entries, all in one transaction.
func (ix *Index) PutSnapshots(entries []SnapshotEntry) error {
	vals := make([][]byte, len(entries))
	for i, e := range entries {
		if e.ID == "" || len(e.ID) > bolt.MaxKeySize {
			return fmt.Errorf("index %s: put snapshot: invalid id %q", ix.path, e.ID)
		}
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("index %s: put snapshot %s: %w", ix.path, e.ID, err)
		}
		vals[i] = v
	}
	return ix.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		for i, e := range entries {
			if err := b.Put([]byte(e.ID), vals[i]); err != nil {
				return fmt.Errorf("index %s: put snapshot %s: %w", ix.path, e.ID, err)
			}
		}
		return nil
	})
}

// Snapshots returns the whole catalog ordered by time, then ID.
func (ix *Index) Snapshots() ([]SnapshotEntry, error) { return ix.entriesWhere(nil) }

// SpaceSnapshots is Snapshots restricted to the entries of one space ("":
// the path backups). Only those entries are decoded whole; the others are
// told apart by their head (entryHead). A restore, a PITR plan or a check
// of one space reads its own snapshots, and a repository of many spaces
// holds many times more of the others (docs/benchmarks.md, "Issue 18,
// session 27: one space's snapshots").
func (ix *Index) SpaceSnapshots(space string) ([]SnapshotEntry, error) {
	return ix.entriesWhere(func(h SnapshotHead) bool { return h.Space == space })
}

// entriesWhere decodes the catalog's entries whose head keep accepts (nil:
// every entry, no head read), ordered by time, then ID.
func (ix *Index) entriesWhere(keep func(SnapshotHead) bool) ([]SnapshotEntry, error) {
	var out []SnapshotEntry
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			if keep != nil {
				h, err := entryHead(v)
				if err != nil {
					return fmt.Errorf("index %s: snapshot %s: %w: %w (%s)", ix.path, k, ErrCorrupt, err, rebuildHint)
				}
				if !keep(h) {
					return nil
				}
			}
			var e SnapshotEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("index %s: snapshot %s: %w: %w (%s)", ix.path, k, ErrCorrupt, err, rebuildHint)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b SnapshotEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// SnapshotHeads returns the ID, time and space of every catalog entry,
// ordered as Snapshots orders them, without decoding the manifests: what
// resolving a snapshot reference or listing the spaces takes.
func (ix *Index) SnapshotHeads() ([]SnapshotHead, error) {
	var out []SnapshotHead
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			h, err := entryHead(v)
			if err != nil {
				return fmt.Errorf("index %s: snapshot %s: %w: %w (%s)", ix.path, k, ErrCorrupt, err, rebuildHint)
			}
			out = append(out, h)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b SnapshotHead) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// SnapshotIDs returns the IDs of the catalog's entries, in no particular
// order, without decoding them (the catalog's keys).
func (ix *Index) SnapshotIDs() ([]string, error) {
	var out []string
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
}

// LatestSnapshot returns the newest catalog entry of a space (by time,
// then ID, as Snapshots orders them), and false when the space has none.
// Only that entry is decoded whole: a backup picks its parent this way on
// every run, and the catalog grows by a snapshot per space and backup.
func (ix *Index) LatestSnapshot(space string) (SnapshotEntry, bool, error) {
	latest, err := ix.LatestSnapshots([]string{space})
	if err != nil {
		return SnapshotEntry{}, false, err
	}
	e, ok := latest[space]
	return e, ok, nil
}

// LatestSnapshots is LatestSnapshot for several spaces in one pass over the
// catalog: `backup --all` of 16 spaces looked each up in a transaction and
// a pass of its own (docs/benchmarks.md, "Issue 18, session 24: the
// unchanged re-backup of 16 spaces"). A space without snapshots has no
// entry in the map.
func (ix *Index) LatestSnapshots(spaces []string) (map[string]SnapshotEntry, error) {
	type head struct {
		ID   string
		Time time.Time
		raw  []byte
	}
	best := make(map[string]*head, len(spaces))
	for _, sp := range spaces {
		best[sp] = &head{}
	}
	err := ix.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			h, err := entryHead(v)
			if err != nil {
				return fmt.Errorf("index %s: snapshot %s: %w: %w (%s)", ix.path, k, ErrCorrupt, err, rebuildHint)
			}
			b := best[h.Space]
			if b == nil {
				return nil
			}
			if b.raw == nil || cmp.Or(h.Time.Compare(b.Time), cmp.Compare(h.ID, b.ID)) > 0 {
				b.ID, b.Time, b.raw = h.ID, h.Time, append(b.raw[:0], v...)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]SnapshotEntry, len(best))
	for sp, b := range best {
		if b.raw == nil {
			continue
		}
		var e SnapshotEntry
		if err := json.Unmarshal(b.raw, &e); err != nil {
			return nil, fmt.Errorf("index %s: snapshot %s: %w: %w (%s)", ix.path, b.ID, ErrCorrupt, err, rebuildHint)
		}
		out[sp] = e
	}
	return out, nil
}

// SnapshotHead is the part of a catalog entry that orders it.
type SnapshotHead struct {
	ID    string
	Time  time.Time
	Space string
}

// entryHead reads an entry's id, time and space. PutSnapshots writes them
// first, as {"id":"…","time":"…","space":"…",…}: that prefix is read as
// it is, and the manifest after it (the bulk of the entry) is not even
// scanned. Any other layout (an escape in a string, another field order)
// is decoded as JSON, so the fast path only ever skips work.
func entryHead(v []byte) (SnapshotHead, error) {
	if h, ok := canonicalHead(v); ok {
		return h, nil
	}
	var e struct {
		ID    *string    `json:"id"`
		Time  *time.Time `json:"time"`
		Space *string    `json:"space"`
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return SnapshotHead{}, err
	}
	if e.ID == nil || e.Time == nil || e.Space == nil {
		return SnapshotHead{}, errors.New("entry lacks id, time or space")
	}
	return SnapshotHead{ID: *e.ID, Time: *e.Time, Space: *e.Space}, nil
}

// canonicalHead is entryHead's fast path: the three fields as
// json.Marshal writes them, strings without escapes.
func canonicalHead(v []byte) (SnapshotHead, bool) {
	var h SnapshotHead
	field := func(prefix string) (string, bool) {
		if !bytes.HasPrefix(v, []byte(prefix)) {
			return "", false
		}
		v = v[len(prefix):]
		end := bytes.IndexByte(v, '"')
		if end < 0 || bytes.IndexByte(v[:end], '\\') >= 0 {
			return "", false
		}
		s := string(v[:end])
		v = v[end+1:]
		return s, true
	}
	var ok bool
	if h.ID, ok = field(`{"id":"`); !ok {
		return h, false
	}
	ts, ok := field(`,"time":"`)
	if !ok {
		return h, false
	}
	if h.Space, ok = field(`,"space":"`); !ok || len(v) == 0 || (v[0] != ',' && v[0] != '}') {
		return h, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return h, false
	}
	h.Time = t
	return h, true
}

// DeleteSnapshot removes a catalog entry; an absent id is not an error.
func (ix *Index) DeleteSnapshot(id string) error {
	if id == "" {
		return fmt.Errorf("index %s: delete snapshot: empty id", ix.path)
	}
	return ix.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).Delete([]byte(id))
	})
}
