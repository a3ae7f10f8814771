package engram

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
)

// The layout of a data dir:
//
//	DIR/metadata.json                            space registry
//	DIR/spaces/<space-id>/wal/wal-<16 hex>.log   WAL segments, append-only, newest one open
//	DIR/spaces/<space-id>/hot/...                small files, rewritten wholesale
//	DIR/spaces/<space-id>/warm/warm_tier.dat     page file, 4 KiB pages rewritten in place
//	DIR/spaces/<space-id>/cold/seg-<n>.col       columnar segments, never modified once written
//	DIR/spaces/<space-id>/checkpoint.json        {"sequence": C, "timestamp_ns": T}
//
// The WAL segments' names and bytes are package walreplay's.
const (
	MetadataName   = "metadata.json"   // in the data dir: the space registry
	SpacesName     = "spaces"          // in the data dir: one directory per space
	CheckpointName = "checkpoint.json" // in a space: how far the tiers hold the state
	WALName        = "wal"             // in a space: the WAL segments
	HotName        = "hot"             // in a space: small files rewritten wholesale
	WarmName       = "warm"            // in a space: the page file's directory
	ColdName       = "cold"            // in a space: columnar segments, written once
	WarmFileName   = "warm_tier.dat"   // in warm/: the page file
	PageSize       = 4096              // the warm page file's page size
)

// The hot tier's files, each rewritten wholesale (temporary file, then
// rename) on every checkpoint.
const (
	HotMemtable = "memtable.bin"    // "EHOT" | u32 count | count x (u64 seq | i64 ts | u32 len | record)
	HotRecent   = "recent_ids.json" // {"updated_ns": T, "ids": [...]} most recent first
	HotStats    = "stats.json"      // {"sequence": C, "timestamp_ns": T, "live_records": n, "entries": n}
)

// HotFiles lists the hot tier's files.
var HotFiles = []string{HotMemtable, HotRecent, HotStats}

// SpaceSubdirs are the entries of a space directory that must be
// directories: a backup stores a symlink there as the directory it points
// to, and a restore refuses a snapshot with anything else there.
var SpaceSubdirs = []string{ColdName, HotName, WALName, WarmName}

// StagedEntries are the parts of a space that the database changes in place
// and that a quiesced backup therefore copies while the database is paused:
// the checkpoint and the hot and warm tiers. Cold segments never change once
// written and the WAL only grows (and is read last), so neither needs a pause.
var StagedEntries = []string{CheckpointName, HotName, WarmName}

// MetadataPath is DIR/metadata.json.
func MetadataPath(dataDir string) string { return filepath.Join(dataDir, MetadataName) }

// SpacesDir is DIR/spaces.
func SpacesDir(dataDir string) string { return filepath.Join(dataDir, SpacesName) }

// SpaceDir is DIR/spaces/<id>.
func SpaceDir(dataDir, id string) string { return filepath.Join(dataDir, SpacesName, id) }

// WALDir is DIR/spaces/<id>/wal.
func WALDir(dataDir, id string) string { return filepath.Join(SpaceDir(dataDir, id), WALName) }

// HotDir is DIR/spaces/<id>/hot.
func HotDir(dataDir, id string) string { return filepath.Join(SpaceDir(dataDir, id), HotName) }

// WarmDir is DIR/spaces/<id>/warm.
func WarmDir(dataDir, id string) string { return filepath.Join(SpaceDir(dataDir, id), WarmName) }

// WarmPath is DIR/spaces/<id>/warm/warm_tier.dat.
func WarmPath(dataDir, id string) string { return filepath.Join(WarmDir(dataDir, id), WarmFileName) }

// ColdDir is DIR/spaces/<id>/cold.
func ColdDir(dataDir, id string) string { return filepath.Join(SpaceDir(dataDir, id), ColdName) }

// CheckpointPath is DIR/spaces/<id>/checkpoint.json.
func CheckpointPath(dataDir, id string) string {
	return filepath.Join(SpaceDir(dataDir, id), CheckpointName)
}

// SpaceRel is a space's directory relative to the data dir, with slashes
// ("spaces/<id>"), as snapshots name it; SpaceRel(id)+"/"+name names an
// entry of the space.
func SpaceRel(id string) string { return SpacesName + "/" + id }

// Cold segments are named seg-<n>.col with n zero-padded to 6 digits,
// counting from 1, so that lexical order is creation order.
var coldNameRe = regexp.MustCompile(`^seg-([0-9]+)\.col$`)

// ColdSegmentName is the name of cold segment n.
func ColdSegmentName(n int) string { return fmt.Sprintf("seg-%06d.col", n) }

// ParseColdSegmentName returns n for a name seg-<n>.col.
func ParseColdSegmentName(name string) (int, bool) {
	m := coldNameRe.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}
