package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"memento/cmd/memento/instant"
	"memento/engram"
	"memento/repo"
	"memento/repo/walarchive"
	"memento/walreplay"
)

func newWALCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "wal",
		Short: "Archive, watch, compact, verify, inspect and replay Engram WALs",
	}
	c.AddCommand(newWALArchiveCommand(a), newWALWatchCommand(a), newWALCompactCommand(a),
		newWALVerifyCommand(a), newWALInspectCommand(a), newWALReplayCommand(a))
	return c
}

// spaceSel is the --data-dir/--space/--all trio shared by the wal commands.
type spaceSel struct {
	dataDir string
	spaces  []string
	all     bool
}

func (s *spaceSel) register(c *cobra.Command, multi bool) {
	fl := c.Flags()
	fl.StringVar(&s.dataDir, "data-dir", "", "Engram data directory (required)")
	if multi {
		fl.StringSliceVar(&s.spaces, "space", nil, "space id (repeatable)")
		fl.BoolVar(&s.all, "all", false, "every space of the data dir")
	} else {
		fl.StringSliceVar(&s.spaces, "space", nil, "space id")
	}
}

// resolve returns the spaces selected; with neither --space nor --all, every
// space when allowDefault. bad are the entries of spaces/ that cannot be
// spaces (listSpaces): the caller handles the others, then fails naming them.
func (s *spaceSel) resolve(allowDefault bool) (spaces []string, bad []error, err error) {
	if s.dataDir == "" {
		return nil, nil, usagef("--data-dir DIR is required")
	}
	if s.all && len(s.spaces) > 0 {
		return nil, nil, usagef("give either --space or --all, not both")
	}
	if len(s.spaces) == 0 {
		if !s.all && !allowDefault {
			return nil, nil, usagef("give --space ID or --all")
		}
		return listSpaces(s.dataDir)
	}
	for _, sp := range s.spaces {
		if err := engram.ValidSpaceID(sp); err != nil {
			return nil, nil, usagef("%v", err)
		}
	}
	return s.spaces, nil, nil
}

func newWALArchiveCommand(a *app) *cobra.Command {
	var sel spaceSel
	var newTimeline bool
	c := &cobra.Command{
		Use:   "archive --data-dir DIR (--space ID | --all)",
		Short: "Ship every WAL byte the repository lacks (sealed segments and the written part of the open one)",
		Long: `archive stores, per space, every complete WAL entry not yet in the repository.
Segments are cut into content-defined chunks exactly as a backup cuts them, so a
grown segment costs only its new tail, and archived WAL shares chunks with
snapshots. The archive position lives in the repository (wal/), so any host
can continue it. A torn tail of the open segment is left for the next run; a
sequence gap in the source is an error naming the missing range.

Each space is archived into the timeline its data dir is on
(DIR/.memento/timelines.json; a point-in-time restore leaves a new one
pending, recorded here first). A WAL truncated or rewritten in place by
something other than a memento restore fails with exit 5 naming the segment
and offsets; if what is on disk is now the database's history,
--new-timeline --space ID starts a new timeline from it (forked at the last
segment the disk and the archive agree on) and archives it.`,
		Example: `  memento wal archive --data-dir /var/lib/engram --all`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spaces, bad, err := sel.resolve(false)
			if err != nil {
				return err
			}
			if newTimeline {
				if len(sel.spaces) == 0 {
					return usagef("--new-timeline needs --space ID (the spaces whose rewritten WAL starts a new timeline)")
				}
				if err := a.walNewTimeline(cmd.Context(), sel.dataDir, spaces); err != nil {
					return err
				}
			}
			return a.walArchive(cmd.Context(), sel.dataDir, spaces, bad)
		},
	}
	sel.register(c, true)
	c.Flags().BoolVar(&newTimeline, "new-timeline", false, "the data dir's WAL was truncated or rewritten in place (not by a memento restore): start a new timeline from what is on disk, then archive it")
	return c
}

// spacesArchivedAtOnce is how many spaces `wal archive` archives at once.
// They share one chunk pipeline, whose workers bound the CPU spent cutting,
// hashing and compressing whatever the number of spaces, and the
// repository's pack writes; each space adds its own packer (the pack it
// fills) and reads. Four keep the pipeline busy while a space is listing or
// between segments, without holding many spaces' packs at once.
const spacesArchivedAtOnce = 4

// walArchive archives spaces; bad are the entries of spaces/ that cannot be
// spaces, reported with the errors once the others are archived.
func (a *app) walArchive(ctx context.Context, dataDir string, spaces []string, bad []error) error {
	w, err := a.openWAL(ctx, dataDir, "wal archive")
	if err != nil {
		return err
	}
	defer w.close()
	r, ctx := w.r, w.ctx // ctx is cancelled if the lock is lost
	ar, closeAr := w.archiver()
	defer closeAr()
	var mu sync.Mutex
	var results []*walarchive.WALArchiveResult
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(spacesArchivedAtOnce)
	for _, sp := range spaces {
		g.Go(func() error {
			res, err := ar.ArchiveSpace(gctx, dataDir, sp)
			a.auditArchive(gctx, r, sp, res, err)
			mu.Lock()
			defer mu.Unlock()
			// A failed run reports what it saved before failing, not what it
			// read: nothing is printed for a space whose run saved nothing.
			if res != nil && (err == nil || res.Segments > 0) {
				results = append(results, res)
			}
			if err != nil {
				errs = append(errs, err)
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].Space < results[j].Space })
	for _, res := range results {
		a.printArchive(res)
	}
	if err := a.emit(results); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(append(errs, bad...)...)
}

// walNewTimeline records a new timeline for each space (walarchive.NewTimeline).
func (a *app) walNewTimeline(ctx context.Context, dataDir string, spaces []string) error {
	w, err := a.openWAL(ctx, dataDir, "wal archive --new-timeline")
	if err != nil {
		return err
	}
	defer w.close()
	host, _ := os.Hostname()
	for _, sp := range spaces {
		rec, err := walarchive.NewTimeline(w.ctx, w.r, dataDir, sp, host)
		if err != nil {
			return err
		}
		a.printf("space %s: timeline %d started from timeline %d at seq %d (%s)\n", sp, rec.Timeline, rec.Parent, rec.ForkSeq, rec.Target)
	}
	return nil
}

func (a *app) printArchive(res *walarchive.WALArchiveResult) {
	pos := "nothing archived yet"
	if res.LastSeq > 0 {
		pos = fmt.Sprintf("archived through seq %d (%s)", res.LastSeq, walreplay.FormatTime(res.LastTS))
	}
	a.printf("space %s: %s updated, %s of new WAL, %s stored; %s in %.2fs\n",
		res.Space, plural(res.Segments, "segment"), human(uint64(res.NewBytes)), human(uint64(res.StoredBytes)), pos, res.Seconds)
	if res.TornTail != "" {
		a.printf("space %s: the open segment ends in a torn tail at %s; archived up to the last complete entry\n", res.Space, res.TornTail)
	}
	for _, w := range res.Warnings {
		a.printf("space %s: warning: %s\n", res.Space, w)
	}
}

func newWALVerifyCommand(a *app) *cobra.Command {
	var sel spaceSel
	c := &cobra.Command{
		Use:   "verify --data-dir DIR [--space ID]",
		Short: "Validate every entry of the WAL of a space (or of every space)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spaces, bad, err := sel.resolve(true)
			if err != nil {
				return err
			}
			if len(bad) > 0 {
				return errors.Join(bad...)
			}
			var sums []map[string]any
			for _, sp := range spaces {
				l, err := walreplay.OpenLog(engram.WALDir(sel.dataDir, sp))
				if errors.Is(err, walreplay.ErrCorrupt) { // a malformed segment name, a segment that is not a file
					return fmt.Errorf("space %s: %w: %w", sp, repo.ErrCorrupt, err)
				}
				if err != nil {
					return fmt.Errorf("space %s: %w", sp, err)
				}
				s, err := l.Verify(cmd.Context())
				if err != nil {
					return fmt.Errorf("space %s: %w: %w", sp, repo.ErrCorrupt, err)
				}
				a.printf("space %s: %s, %s, seq %d..%d, %s .. %s, %s",
					sp, plural(s.Segments, "segment"), plural(int(s.Entries), "entry"), s.FirstSeq, s.LastSeq, walreplay.FormatTime(s.FirstTS), walreplay.FormatTime(s.LastTS), human(uint64(s.Bytes)))
				if s.Compacted > 0 {
					a.printf(", %d compacted", s.Compacted)
				}
				if s.TornTail {
					a.printf(", torn tail at %s offset %d (ignored)", s.TornSegment, s.TornOffset)
				}
				a.printf(": OK\n")
				sums = append(sums, map[string]any{"space": sp, "summary": s})
			}
			return a.emit(sums)
		},
	}
	sel.register(c, false)
	return c
}

func newWALInspectCommand(a *app) *cobra.Command {
	var entries bool
	c := &cobra.Command{
		Use:   "inspect SEGMENT",
		Short: "Show the entries and ranges of one WAL segment file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := args[0]
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			name := filepath.Base(p)
			s, err := walreplay.VerifySegment(cmd.Context(), f, name)
			if err != nil {
				return fmt.Errorf("%w: %w", repo.ErrCorrupt, err)
			}
			a.printf("%s: %s, seq %d..%d, %s .. %s, %d bytes", name, plural(int(s.Entries), "entry"), s.FirstSeq, s.LastSeq,
				walreplay.FormatTime(s.FirstTS), walreplay.FormatTime(s.LastTS), s.Bytes)
			if s.Compacted > 0 {
				a.printf(", compacted")
			}
			if s.TornTail {
				a.printf(", torn tail at offset %d", s.TornOffset)
			}
			a.printf("\n")
			if entries {
				if _, err := f.Seek(0, 0); err != nil {
					return err
				}
				sr := walreplay.NewSegmentReader(f, name)
				for {
					e, err := sr.Next()
					if err != nil {
						break
					}
					a.printf("%10d  seq %d  %s  %-12s flags %d  %d bytes\n", sr.Offset(), e.Seq, walreplay.FormatTime(e.TimestampNS), e.Type, e.Flags, e.Size())
				}
			}
			return a.emit(s)
		},
	}
	c.Flags().BoolVar(&entries, "entries", false, "list every entry (offset, sequence, time, type, size)")
	return c
}

func newWALReplayCommand(a *app) *cobra.Command {
	var (
		sel    spaceSel
		at     string
		toSeq  uint64
		export string
		kind   string
	)
	c := &cobra.Command{
		Use:   "replay --data-dir DIR --space ID [--at T | --to-seq N] [--export FILE]",
		Short: "Replay a space's WAL to a point and print the entry count and state digest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(sel.spaces) != 1 || sel.dataDir == "" {
				return usagef("give --data-dir DIR and one --space ID")
			}
			t, err := a.parseTarget(at, toSeq, cmd.Flags().Changed("to-seq"), true)
			if err != nil {
				return err
			}
			if kind == "v1" {
				kind = ""
			}
			if !walreplay.KnownDigestKind(kind) {
				return usagef("--digest-kind is v1 or %s, not %q", walreplay.DigestKindLtHash, kind)
			}
			sp := sel.spaces[0]
			l, err := walreplay.OpenLog(engram.WALDir(sel.dataDir, sp))
			if err != nil {
				return fmt.Errorf("space %s: %w", sp, err)
			}
			st := walreplay.NewState()
			pos, err := l.Replay(cmd.Context(), t, st)
			if err != nil {
				return fmt.Errorf("space %s: replay to %s: %w", sp, t, err)
			}
			d, err := st.DigestOf(kind)
			if err != nil {
				return fmt.Errorf("space %s: %w", sp, err)
			}
			label := ""
			if kind != "" {
				label = kind + " "
			}
			a.printf("space %s: replayed %s to seq %d (%s): %s, state digest %s%x\n",
				sp, plural(int(st.Applied()), "entry"), pos.Seq, walreplay.FormatTime(pos.TimestampNS), plural(int(st.Len()), "record"), label, d)
			if export != "" {
				f, err := os.Create(export)
				if err != nil {
					return err
				}
				if err := st.ExportJSONL(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			return a.emit(map[string]any{"space": sp, "entries": st.Applied(), "seq": pos.Seq, "timestamp_ns": pos.TimestampNS,
				"records": st.Len(), "digest": fmt.Sprintf("%x", d), "digest_kind": walreplay.DigestKindName(kind)})
		},
	}
	sel.register(c, false)
	fl := c.Flags()
	fl.StringVar(&at, "at", "", "replay entries with timestamp_ns <= T: "+instant.Forms)
	fl.Uint64Var(&toSeq, "to-seq", 0, "replay entries with sequence <= N")
	fl.StringVar(&export, "export", "", "write the state as JSON lines to FILE")
	fl.StringVar(&kind, "digest-kind", "v1", "the state digest to print: v1 (what format-4 and older repositories record) or "+walreplay.DigestKindLtHash+" (format 5)")
	return c
}

// parseTarget turns --at/--to-seq into a replay target; with none, optional
// says whether "to the end" is allowed.
func (a *app) parseTarget(at string, toSeq uint64, seqSet, optional bool) (walreplay.Target, error) {
	var t walreplay.Target
	if at != "" && seqSet {
		return t, usagef("give --at or --to-seq, not both")
	}
	if at != "" {
		at, err := a.parseInstant("--at", at, false)
		if err != nil {
			return t, err
		}
		ns := at.UnixNano()
		t.AtTime = &ns
	}
	if seqSet {
		n := toSeq
		t.ToSeq = &n
	}
	if t.AtTime == nil && t.ToSeq == nil && !optional {
		return t, usagef("give --at T or --to-seq N")
	}
	return t, nil
}
