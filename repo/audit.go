package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// The audit trail is a set of immutable files under logs/, one sealed JSON
// record per event (saveFile, kind "log"). One file per record, rather than an
// appended log, because the repository has no append and no rename: every
// host can add records concurrently, replication copies them like any other
// file, and a record once written cannot be altered without its name (its
// BLAKE3) and its seal both failing.
const (
	DirLogs = "logs"
	kindLog = "log"
	// AuditVersion is the record format this binary writes.
	AuditVersion = 1
)

// Audit results.
const (
	AuditOK     = "ok"     // the operation completed and everything it checked held
	AuditFailed = "failed" // the operation failed or found damage
)

// AuditRecord is one entry of the audit trail: who did what to which
// snapshot, when, with which result and figures. Commands: backup, archive,
// restore, verify, check, repair, prune (and forget). A prune or forget record
// names each snapshot it removed in Snapshot (one record per snapshot), which
// is how `check` tells a pruned snapshot from one that vanished.
type AuditRecord struct {
	Version  int       `json:"version"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	User     string    `json:"user,omitempty"`
	Command  string    `json:"command"`
	Snapshot string    `json:"snapshot,omitempty"` // full snapshot ID
	Space    string    `json:"space,omitempty"`
	Level    string    `json:"level,omitempty"` // verify: L1..L4
	Result   string    `json:"result"`          // AuditOK or AuditFailed
	Error    string    `json:"error,omitempty"`
	Figures  Figures   `json:"figures,omitempty"`
	// Subset is "k/n" when a verify read only part k of n of the packs;
	// the next run continues with part k+1 (repo/verify/verify_subset.go).
	Subset string `json:"subset,omitempty"`
	// Schedule names the policy slot of a `verify --schedule` run
	// (repo/verify/verify_schedule.go), so the next run knows when it is due again.
	Schedule string `json:"schedule,omitempty"`
	// File is where the record is stored (not part of the record itself).
	File string `json:"file,omitempty"`
}

// AppendAudit stores rec as a new immutable file under logs/. Time, Host,
// User and Version are filled in when empty. It returns the file's name.
func (r *Repository) AppendAudit(ctx context.Context, rec AuditRecord) (string, error) {
	rec.Version = AuditVersion
	if rec.Time.IsZero() {
		rec.Time = time.Now().UTC()
	}
	if rec.Host == "" {
		rec.Host, _ = os.Hostname()
	}
	if rec.User == "" {
		if u, err := user.Current(); err == nil {
			rec.User = u.Username
		}
	}
	if rec.Result == "" {
		rec.Result = AuditOK
	}
	rec.File = ""
	id, err := r.SaveFile(ctx, DirLogs, kindLog, rec)
	if err != nil {
		return "", fmt.Errorf("audit record: %w", err)
	}
	return FileName(DirLogs, id), nil
}

// auditRecordReads is how many audit records AuditLog reads at once. They
// are small files (a few hundred bytes), so reading them is bound by the
// storage's latency (an S3 round trip per file), not by bandwidth or CPU:
// eight overlap it, as many as the S3 backend's default connections.
const auditRecordReads = 8

// AuditLog reads every audit record at or after since (zero: all), oldest
// first. Records that fail verification are not returned; they are counted
// in the error-free second result so that `check` and `log` can say so.
func (r *Repository) AuditLog(ctx context.Context, since time.Time) ([]AuditRecord, []error, error) {
	var names []string
	err := r.be.List(ctx, DirLogs, func(name string, size int64) error {
		names = append(names, name)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("list audit records: %w", err)
	}
	var (
		mu   sync.Mutex
		out  []AuditRecord
		bad  []error
		g, c = errgroup.WithContext(ctx)
	)
	g.SetLimit(auditRecordReads)
	for _, name := range names {
		g.Go(func() error {
			var rec AuditRecord
			err := r.LoadFile(c, name, kindLog, &rec)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				rec.File = name
				if !rec.Time.Before(since) {
					out = append(out, rec)
				}
			case errors.Is(err, ErrCorrupt) || errors.Is(err, ErrFormat):
				bad = append(bad, err)
			case errors.Is(err, fs.ErrNotExist):
			default:
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].File < out[j].File
	})
	return out, bad, nil
}
