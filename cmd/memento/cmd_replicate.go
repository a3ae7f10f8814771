package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"memento/repo"
	"memento/repo/backend/local"
	"memento/repo/replicate"
)

type replicateFlags struct {
	to       []string
	bwlimit  string
	parallel int
	verify   bool
	delete   bool
}

func newReplicateCommand(a *app) *cobra.Command {
	var f replicateFlags
	c := &cobra.Command{
		Use:   "replicate --to REPO [--to REPO...]",
		Short: "Copy every repository file a replica lacks, as is (no password needed)",
		Long: `replicate copies the files of the repository (--repo) that each destination
lacks, byte for byte: packs before the index files and manifests that refer
to them, so every destination is a valid repository at every moment and an
interrupted run simply resumes. Destinations are local directories (created
when missing) or s3: URLs (the bucket is created when missing).

No password is needed; with one (MEMENTO_PASSWORD...), a 'replicate' record
is added to the source's audit trail. See docs/replication.md.`,
		Example: `  memento replicate --to s3:https://s3.eu-west-1.amazonaws.com/backups/engram --bwlimit 10MiB
  memento replicate --to /mnt/nas/memento --to s3:https://s3.us-east-1.amazonaws.com/archive/engram --verify
  memento -r s3:https://s3.eu-west-1.amazonaws.com/backups/engram replicate --to /srv/restore-copy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.replicate(cmd.Context(), f)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.to, "to", nil, "destination repository (repeatable: fan out to several)")
	fl.StringVar(&f.bwlimit, "bwlimit", "", "average read rate limit shared by all destinations, e.g. 10MiB (per second); 0 or empty: none")
	fl.IntVar(&f.parallel, "parallel", 4, "files copied at once to each destination")
	fl.BoolVar(&f.verify, "verify", false, "re-read every file written and check it against its name (BLAKE3)")
	fl.BoolVar(&f.delete, "delete", false, "remove destination files the source no longer has (after the copy, manifests first)")
	return c
}

// replicateJSON is the --json result.
type replicateJSON struct {
	Files        int64                      `json:"files"`
	Bytes        int64                      `json:"bytes"`
	Seconds      float64                    `json:"seconds"`
	Skipped      int64                      `json:"skipped"`
	Deleted      int64                      `json:"deleted"`
	Destinations []replicate.ReplicateStats `json:"destinations"`
}

func (a *app) replicate(ctx context.Context, f replicateFlags) error {
	if len(f.to) == 0 {
		return usagef("replicate needs at least one --to REPO")
	}
	if f.parallel < 1 || f.parallel > 256 {
		return usagef("--parallel %d: want 1 to 256", f.parallel)
	}
	rate, err := parseByteRate(f.bwlimit)
	if err != nil {
		return usagef("--bwlimit: %v", err)
	}
	src, err := a.backend(ctx, false)
	if err != nil {
		return err
	}
	var dsts []repo.Backend
	seen := map[string]bool{src.Location(): true}
	for _, to := range f.to {
		d, err := a.destination(ctx, to)
		if err != nil {
			return err
		}
		if seen[d.Location()] {
			return usagef("--to %s: the source or another --to already names that repository", to)
		}
		seen[d.Location()] = true
		dsts = append(dsts, d)
	}
	prog := &repo.Progress{}
	stop := a.showProgress("replicate", -1, prog)
	stats, err := replicate.ReplicateAll(ctx, src, dsts, replicate.ReplicateOptions{
		Parallel: f.parallel, BytesPerSecond: rate, Verify: f.verify, Delete: f.delete, Progress: prog, Logger: a.log,
	})
	stop()
	sum := replicateJSON{Destinations: stats}
	for _, st := range stats {
		sum.Files += st.Files
		sum.Bytes += st.Bytes
		sum.Skipped += st.Skipped
		sum.Deleted += st.Deleted
		sum.Seconds = math.Max(sum.Seconds, st.Seconds)
		if st.Error == "" {
			rateStr := ""
			if st.Seconds > 0 {
				rateStr = fmt.Sprintf(", %s/s", human(uint64(float64(st.Bytes)/st.Seconds)))
			}
			a.printf("replicated to %s: %s (%s) copied, %d present, %d deleted in %.1fs%s\n",
				st.Destination, plural(int(st.Files), "file"), human(uint64(st.Bytes)), st.Skipped, st.Deleted, st.Seconds, rateStr)
		}
	}
	a.auditReplicate(ctx, sum, err)
	if jerr := a.emit(sum); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

// destination opens a --to location, creating a missing local directory or
// bucket: replicating into a new place is the point.
func (a *app) destination(ctx context.Context, to string) (repo.Backend, error) {
	if strings.HasPrefix(to, "s3:") {
		return a.openS3Backend(ctx, to, true)
	}
	be, err := local.Open(to)
	if errors.Is(err, fs.ErrNotExist) {
		be, err = local.Create(to)
	}
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", to, err)
	}
	return a.own(be), nil
}

// auditReplicate records the run in the source's audit trail when a password
// is at hand without asking (replication itself needs none).
func (a *app) auditReplicate(ctx context.Context, sum replicateJSON, runErr error) {
	_, env := os.LookupEnv("MEMENTO_PASSWORD")
	if !env && a.passwordFile == "" && os.Getenv("MEMENTO_PASSWORD_FILE") == "" {
		a.log.Debug("no password given; the replication is not recorded in the audit trail")
		return
	}
	r, err := a.open(ctx)
	if err != nil {
		a.log.Warn("could not open the source to record the replication in its audit trail", "err", err)
		return
	}
	defer r.Close()
	var dests []string
	for _, d := range sum.Destinations {
		dests = append(dests, d.Destination)
	}
	rec := auditResult(repo.AuditRecord{Command: "replicate", Figures: repo.Figures{
		"files": repo.Int(sum.Files), "bytes": repo.Int(sum.Bytes), "seconds": repo.Float(sum.Seconds),
		"skipped": repo.Int(sum.Skipped), "deleted": repo.Int(sum.Deleted), "destinations": repo.Int(len(dests)),
	}}, runErr)
	a.log.Debug("replication recorded", "destinations", strings.Join(dests, " "))
	a.audit(ctx, r, rec)
}

// parseByteRate reads --bwlimit (replicate.ParseByteRate).
func parseByteRate(s string) (int64, error) { return replicate.ParseByteRate(s) }
