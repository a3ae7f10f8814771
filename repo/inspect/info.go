package inspect

import (
	"context"
	"maps"
	"slices"
	"time"

	"memento/repo"
	"memento/repo/pitr"
	"memento/repo/verify"
	"memento/repo/walarchive"
)

// InfoVersion is the version of the Info JSON schema (docs/cli.md, "info"):
// fields are only ever added.
const InfoVersion = 1

// Info is the one-screen summary of a repository `memento info` prints,
// pgBackRest's info: the repository, then every space with its snapshots,
// recoverable WAL range per database and timeline, and verification state.
// It is gathered from the catalog, the index, the WAL archive records, the
// history records and the audit trail: no data is read.
type Info struct {
	Version    int         `json:"version"`
	Repository RepoInfo    `json:"repository"`
	Spaces     []SpaceInfo `json:"spaces"`
	Paths      *PathsInfo  `json:"paths,omitempty"` // snapshots of plain paths, if any
	// Problems lists what could not be gathered (a space's WAL archive
	// that does not load), one line each; the rest is still reported.
	Problems []string `json:"problems"`
}

// RepoInfo describes the repository as a whole.
type RepoInfo struct {
	Location      string    `json:"location"`
	ID            string    `json:"id"`
	FormatVersion int       `json:"format_version"`
	Created       time.Time `json:"created"`
	Encryption    string    `json:"encryption"`
	Packs         int       `json:"packs"`
	StoredBytes   int64     `json:"stored_bytes"` // sum of the pack sizes
	Snapshots     int       `json:"snapshots"`
}

// Verification is the last verification of a space in the audit trail,
// and how many of its current snapshots have passed one.
type Verification struct {
	Time     time.Time `json:"time"`
	Snapshot string    `json:"snapshot,omitempty"`
	Level    string    `json:"level,omitempty"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`
}

// SpaceInfo is one Engram space.
type SpaceInfo struct {
	Space       string     `json:"space"`
	Snapshots   int        `json:"snapshots"`
	Oldest      *time.Time `json:"oldest,omitempty"`
	Newest      *time.Time `json:"newest,omitempty"`
	NewestID    string     `json:"newest_id,omitempty"`
	NewestBytes uint64     `json:"newest_bytes"` // the newest snapshot's restore size
	StoredBytes int64      `json:"stored_bytes"` // packs of the space (snapshots and WAL)
	Packs       int        `json:"packs"`
	Databases   []DBInfo   `json:"databases"`
	// VerifiedSnapshots counts the space's snapshots with a passed
	// verification (VerifiedLevel: their highest level) in the audit trail.
	VerifiedSnapshots int           `json:"verified_snapshots"`
	LastVerification  *Verification `json:"last_verification,omitempty"`
}

// DBInfo is one database (identity) that has the space, and its timelines.
type DBInfo struct {
	Identity  string         `json:"identity"` // "" for the legacy database
	Host      string         `json:"host,omitempty"`
	Timelines []TimelineInfo `json:"timelines"`
}

// TimelineInfo is one timeline: what can be recovered on it.
type TimelineInfo struct {
	Timeline        uint32           `json:"timeline"`
	Parent          uint32           `json:"parent,omitempty"`
	ForkSeq         uint64           `json:"fork_seq,omitempty"`
	ArchivedThrough uint64           `json:"archived_through"` // last archived WAL entry, 0: none
	Ranges          []pitr.PITRRange `json:"ranges"`
	// FirstRecoverable and LastRecoverable are the first and last instants
	// (ns since the epoch) a point-in-time restore reaches on this
	// timeline, 0 when nothing is recoverable.
	FirstRecoverable int64 `json:"first_recoverable_ns"`
	LastRecoverable  int64 `json:"last_recoverable_ns"`
}

// PathsInfo sums the snapshots of plain paths.
type PathsInfo struct {
	Snapshots   int        `json:"snapshots"`
	Oldest      *time.Time `json:"oldest,omitempty"`
	Newest      *time.Time `json:"newest,omitempty"`
	StoredBytes int64      `json:"stored_bytes"`
	Packs       int        `json:"packs"`
}

// GatherInfo gathers the repository's Info. It takes a *repo.Repository
// because the planner's ranges do (pitr.Planner.AllTimelines).
func GatherInfo(ctx context.Context, r *repo.Repository, planner *pitr.Planner) (*Info, error) {
	cfg := r.Config()
	info := &Info{Version: InfoVersion, Spaces: []SpaceInfo{}, Problems: []string{},
		Repository: RepoInfo{Location: r.Backend().Location(), ID: cfg.ID, FormatVersion: cfg.Version,
			Created: cfg.Created, Encryption: cfg.Encryption}}
	packs, err := r.Index().Packs()
	if err != nil {
		return nil, err
	}
	packBytes, packCount := map[string]int64{}, map[string]int{}
	for _, p := range packs {
		info.Repository.Packs++
		info.Repository.StoredBytes += p.Size
		packBytes[p.Space] += p.Size
		packCount[p.Space]++
	}
	sns, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	info.Repository.Snapshots = len(sns)
	recs, _, err := r.AuditLog(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	levels := verify.SnapshotLevels(recs, sns)
	bySpace := map[string][]*repo.Snapshot{}
	for _, sn := range sns { // oldest first
		bySpace[sn.Space] = append(bySpace[sn.Space], sn)
	}
	archived, err := walarchive.ArchiveSpaces(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, sp := range archived {
		if _, ok := bySpace[sp]; !ok {
			bySpace[sp] = nil
		}
	}
	if ps := bySpace[""]; len(ps) > 0 {
		sp := repo.StorageSpace("")
		info.Paths = &PathsInfo{Snapshots: len(ps), Oldest: &ps[0].Time, Newest: &ps[len(ps)-1].Time,
			StoredBytes: packBytes[sp], Packs: packCount[sp]}
	}
	delete(bySpace, "")
	for _, space := range slices.Sorted(maps.Keys(bySpace)) {
		list := bySpace[space]
		si := SpaceInfo{Space: space, Snapshots: len(list), StoredBytes: packBytes[space], Packs: packCount[space], Databases: []DBInfo{}}
		if len(list) > 0 {
			newest := list[len(list)-1]
			si.Oldest, si.Newest, si.NewestID, si.NewestBytes = &list[0].Time, &newest.Time, newest.ID.String(), newest.Summary.Bytes
		}
		for _, sn := range list {
			if levels[sn.ID.String()] > 0 {
				si.VerifiedSnapshots++
			}
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if rec := recs[i]; rec.Command == "verify" && rec.Space == space {
				si.LastVerification = &Verification{Time: rec.Time, Snapshot: rec.Snapshot, Level: rec.Level, Result: rec.Result, Error: rec.Error}
				break
			}
		}
		if err := spaceDatabases(ctx, r, planner, &si); err != nil {
			info.Problems = append(info.Problems, "space "+space+": "+err.Error())
		}
		info.Spaces = append(info.Spaces, si)
	}
	return info, nil
}

// spaceDatabases fills in the databases of a space and their timelines.
func spaceDatabases(ctx context.Context, r *repo.Repository, planner *pitr.Planner, si *SpaceInfo) error {
	dbs, err := walarchive.Databases(ctx, r, si.Space)
	if err != nil {
		return err
	}
	for _, d := range dbs {
		id := d.Identity
		if id == "" {
			id = "legacy"
		}
		tls, err := planner.AllTimelines(ctx, r, pitr.Select{Space: si.Space, Identity: id})
		if err != nil {
			return err
		}
		db := DBInfo{Identity: d.Identity, Host: d.Host, Timelines: []TimelineInfo{}}
		for _, tr := range tls {
			ti := TimelineInfo{Timeline: tr.Timeline, Parent: tr.Parent, ForkSeq: tr.ForkSeq, ArchivedThrough: tr.ArchivedThrough, Ranges: tr.Ranges}
			for k, g := range tr.Ranges {
				if k == 0 || g.FromTS < ti.FirstRecoverable {
					ti.FirstRecoverable = g.FromTS
				}
				ti.LastRecoverable = max(ti.LastRecoverable, g.ToTS)
			}
			db.Timelines = append(db.Timelines, ti)
		}
		si.Databases = append(si.Databases, db)
	}
	return nil
}
